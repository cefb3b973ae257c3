"""Watch one process: stream its output into the log, stop it when the job must stop.

The heartbeat and log threads only raise flags; this loop, on the worker's
thread, polls them between reads and acts: SIGTERM then SIGKILL after a grace
for a cancel, a timeout or a runner shutdown; SIGKILL at once for a stale lease.
"""

from __future__ import annotations

import os
import select
import threading
import time

from deltaci_runner.jlog import ContextLogger
from deltaci_runner.logstream import LogSpool
from deltaci_runner.process import StepProcess

TERM_GRACE_SECONDS = 5.0
SHUTDOWN_GRACE_SECONDS = 3.0


class Interrupted(Exception):
    """The current step was stopped: reason is stale, shutdown, cancel or timeout."""

    def __init__(self, reason: str, exit_code: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code


class JobFlags:
    """What other threads tell the worker: cancellation requested, lease gone."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.cancel_deadline = 0.0
        self.cancel_reason = ""
        self.stale = threading.Event()
        self.stale_reason = ""

    def request_cancel(self, deadline_seconds: float, reason: str) -> None:
        if not self.cancel.is_set():
            self.cancel_deadline = deadline_seconds
            self.cancel_reason = reason
            self.cancel.set()

    def mark_stale(self, reason: str) -> None:
        if not self.stale.is_set():
            self.stale_reason = reason
            self.stale.set()


def cancel_grace(deadline_seconds: float) -> float:
    """SIGTERM-to-SIGKILL time: the deadline minus room to upload the log and send CancelAck."""
    if deadline_seconds <= 0:
        return 0.0
    if deadline_seconds > 10:
        return min(deadline_seconds - 5, 60.0)
    return deadline_seconds / 2


class Supervisor:
    def __init__(
        self,
        spool: LogSpool,
        flags: JobFlags,
        shutdown: threading.Event,
        *,
        deadline: float,
        max_runtime: object,
        log: ContextLogger,
    ) -> None:
        self.spool = spool
        self.flags = flags
        self.shutdown = shutdown
        self.deadline = deadline
        self.max_runtime = max_runtime
        self.log = log

    def run(self, proc: StepProcess) -> int:
        """Stream the process's output into the log until it ends; stop it when told to."""
        fd = proc.stdout_fd
        reason: str | None = None
        kill_at: float | None = None
        exited_at: float | None = None
        eof = False
        rc: int | None = None
        try:
            while True:
                if not eof:
                    ready, _, _ = select.select([fd], [], [], 0.1)
                    if ready:
                        data = os.read(fd, 65536)
                        if data:
                            self.spool.write(data)
                        else:
                            eof = True
                else:
                    time.sleep(0.05)
                rc = proc.poll()
                if rc is not None:
                    exited_at = exited_at or time.monotonic()
                    # Orphans holding the pipe open don't keep a finished step alive.
                    if eof or time.monotonic() - exited_at > 1.0:
                        break
                wanted = self.interruption()
                if wanted and (reason is None or (wanted == "stale" and reason != "stale")):
                    reason = wanted
                    grace = self._grace(reason)
                    self.log.info("stopping the job's processes", reason=reason, grace=grace)
                    if reason != "stale":
                        self.spool.note(f"stopping: {self._describe(reason)}")
                    if grace <= 0:
                        proc.kill()
                        kill_at = None
                    else:
                        proc.terminate()
                        kill_at = time.monotonic() + grace
                if kill_at is not None and time.monotonic() >= kill_at:
                    proc.kill()
                    kill_at = None
        finally:
            self._drain(fd)
            proc.close()
        if reason is not None:
            raise Interrupted(reason, rc)
        return rc if rc is not None else 1

    def _drain(self, fd: int) -> None:
        try:
            while select.select([fd], [], [], 0)[0]:
                data = os.read(fd, 65536)
                if not data:
                    return
                self.spool.write(data)
        except OSError:
            return

    def interruption(self) -> str | None:
        if self.flags.stale.is_set():
            return "stale"
        if self.shutdown.is_set():
            return "shutdown"
        if self.flags.cancel.is_set():
            return "cancel"
        if time.monotonic() >= self.deadline:
            return "timeout"
        return None

    def check(self) -> None:
        reason = self.interruption()
        if reason:
            raise Interrupted(reason, None)

    def _grace(self, reason: str) -> float:
        if reason == "stale":
            return 0.0
        if reason == "shutdown":
            return SHUTDOWN_GRACE_SECONDS
        if reason == "cancel":
            return cancel_grace(self.flags.cancel_deadline)
        return TERM_GRACE_SECONDS

    def _describe(self, reason: str) -> str:
        if reason == "cancel":
            return f"cancel requested ({self.flags.cancel_reason})"
        if reason == "timeout":
            return f"max_runtime_seconds ({self.max_runtime}) exceeded"
        return "runner shutting down"
