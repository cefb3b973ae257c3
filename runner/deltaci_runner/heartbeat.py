"""Heartbeats on their own thread, so a busy step never lets the lease lapse.

The answer carries cancellation; a `StaleLease` answer, or no accepted
heartbeat for a whole TTL, means the lease is gone and the job must stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from deltaci_runner.client import ClientError, ControlPlane, StaleLease
from deltaci_runner.jlog import ContextLogger, utcnow


class Heartbeater(threading.Thread):
    def __init__(
        self,
        plane: ControlPlane,
        *,
        lease_id: str,
        runner_id: str,
        interval: float,
        ttl: float,
        progress: Callable[[], dict[str, Any]],
        bytes_sent: Callable[[], int],
        on_cancel: Callable[[float, str], None],
        on_stale: Callable[[str], None],
        log: ContextLogger,
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self._plane = plane
        self._lease_id = lease_id
        self._runner_id = runner_id
        self.interval = max(0.1, float(interval))
        self.ttl = max(self.interval, float(ttl))
        self._progress = progress
        self._bytes_sent = bytes_sent
        self._on_cancel = on_cancel
        self._on_stale = on_stale
        self._log = log
        self._halt = threading.Event()
        self.sent = 0

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=35)

    def run(self) -> None:
        last_ok = time.monotonic()
        while not self._halt.is_set():
            try:
                self._beat()
                last_ok = time.monotonic()
                wait = self.interval
            except StaleLease as exc:
                self._on_stale(exc.reason)
                return
            except ClientError as exc:
                if time.monotonic() - last_ok >= self.ttl:
                    self._log.error("no heartbeat accepted for a whole TTL, giving up the lease")
                    self._on_stale("LOST_CONTACT")
                    return
                wait = min(self.interval, 2.0)
                self._log.warning("heartbeat failed", error=str(exc), retry_in=wait)
            self._halt.wait(wait)

    def _beat(self) -> None:
        body = {
            "type": "Heartbeat",
            "lease_id": self._lease_id,
            "runner_id": self._runner_id,
            "progress": self._progress(),
            "log_cursor": {"bytes_sent": self._bytes_sent()},
            "ts": utcnow(),
        }
        answer = self._plane.post_json("/api/v1/internal/heartbeat", body, timeout=20)
        self.sent += 1
        if answer.get("new_lease_ttl_seconds"):
            self.ttl = max(self.interval, float(answer["new_lease_ttl_seconds"]))
        if answer.get("cancel_requested"):
            deadline = float(answer.get("cancel_deadline_seconds") or 0)
            self._on_cancel(deadline, str(answer.get("cancel_reason") or "CANCELED"))
