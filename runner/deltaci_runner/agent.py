"""The runner's main loop as small steps: register once, then `handle_one_lease()` until stopped."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaci_runner import leftovers, state, workspace
from deltaci_runner.caches import DEFAULT_MAX_BYTES, CacheStore
from deltaci_runner.client import (
    ClientError,
    ControlPlane,
    Forbidden,
    ProtocolError,
    TransientError,
    Unauthorized,
    UpgradeRequired,
    backoff_delays,
)
from deltaci_runner.executor import Executor, ExecutorError
from deltaci_runner.jlog import ContextLogger
from deltaci_runner.jobuser import JobUser
from deltaci_runner.worker import Worker

FORBIDDEN_BACKOFF_SECONDS = 30.0


class FatalError(Exception):
    """The runner cannot continue (bad registration token, revoked runner token)."""


@dataclass
class AgentConfig:
    url: str
    name: str
    state_dir: Path
    work_dir: Path
    cache_dir: Path
    capabilities: list[str]
    registration_token: str | None = None
    wait_seconds: int = 20
    once: bool = False
    max_idle_seconds: float | None = None
    cache_max_bytes: int = DEFAULT_MAX_BYTES


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        executor: Executor,
        user: JobUser,
        shutdown: threading.Event,
        log: ContextLogger,
    ) -> None:
        self.config = config
        self.executor = executor
        self.user = user
        self.shutdown = shutdown
        self.log = log
        self.caches = CacheStore(config.cache_dir, config.cache_max_bytes)
        self.plane = ControlPlane(config.url)
        self.registration: state.Registration | None = None
        self._delays = backoff_delays(base=1.0, cap=30.0)

    def register(self) -> state.Registration:
        """Reuse the stored registration, or register with the registration token."""
        reg = state.load(self.config.state_dir, self.config.url)
        if reg is None:
            token = self.config.registration_token
            if not token:
                raise FatalError("not registered yet: pass --registration-token")
            try:
                answer = self.plane.register(token, self.config.name, self.config.capabilities)
            except ProtocolError as exc:  # 401/403 included: a bad or expired token
                raise FatalError(f"registration refused: {exc}") from None
            if not answer.get("runner_id") or not answer.get("token"):
                raise FatalError("registration answer lacks runner_id or token")
            reg = state.Registration(
                url=self.config.url,
                runner_id=str(answer["runner_id"]),
                token=str(answer["token"]),
                lease_ttl_seconds=float(answer.get("lease_ttl_seconds") or 120),
                heartbeat_interval_seconds=float(answer.get("heartbeat_interval_seconds") or 20),
            )
            state.save(self.config.state_dir, reg)
            self.log.info("registered", runner_id=reg.runner_id, name=self.config.name)
        else:
            self.log.info("reusing registration", runner_id=reg.runner_id)
        self.registration = reg
        self.plane.token = reg.token
        try:
            removed = self.executor.attach(reg.runner_id)
        except ExecutorError as exc:  # retried at the next registration; jobs still run
            self.log.warning(
                "could not look for containers a previous instance left", error=str(exc)
            )
            removed = []
        if removed:
            self.log.warning("removed containers a previous instance left", containers=removed)
        return reg

    def clean_up_leftovers(self) -> None:
        """A previous instance may have been SIGKILLed mid-job: its job's processes and
        job trees (source, maybe secrets) are still here. Kill and remove them first."""
        prefix = self.config.work_dir / "job-"
        killed = leftovers.kill_under(prefix)
        removed = workspace.sweep(self.config.work_dir)
        if killed or removed:
            self.log.warning("removed what a previous instance left", pids=killed, dirs=removed)

    def run(self) -> int:
        self.clean_up_leftovers()
        busy_at = time.monotonic()
        while not self.shutdown.is_set():
            if self.registration is None:
                self._register_with_retry()
            elif self.handle_one_lease():
                if self.config.once:
                    break
                busy_at = time.monotonic()
            if self._idle_for_too_long(busy_at):
                break
        self.log.info("runner stopped")
        return 0

    def _idle_for_too_long(self, busy_at: float) -> bool:
        """A pod an autoscaler started for a job that another runner took, or that a
        limit holds back, gives up after --max-idle-seconds instead of waiting forever."""
        limit = self.config.max_idle_seconds
        if limit is None or time.monotonic() - busy_at < limit:
            return False
        self.log.info("no job within the idle limit; exiting", max_idle_seconds=limit)
        return True

    def _register_with_retry(self) -> None:
        try:
            self.register()
        except TransientError as exc:
            self._pause(f"control plane unreachable: {exc}")

    def handle_one_lease(self) -> bool:
        """Poll once; run the job if one was granted. True when a job ran."""
        assert self.registration is not None
        try:
            grant = self._poll()
        except Unauthorized:
            self._reregister()
            return False
        except UpgradeRequired as exc:
            raise FatalError(f"protocol version refused: {exc.message}") from None
        except Forbidden as exc:
            self.log.warning("lease refused (runner disabled or draining)", error=str(exc))
            self.shutdown.wait(FORBIDDEN_BACKOFF_SECONDS)
            return False
        except ProtocolError as exc:
            self._pause(f"lease request rejected: {exc}")
            return False
        except ClientError as exc:
            self._pause(f"lease request failed: {exc}")
            return False
        self._delays = backoff_delays(base=1.0, cap=30.0)
        if grant is None:
            return False
        if self.shutdown.is_set():
            self.log.warning("lease granted during shutdown; not starting it, it will expire")
            return False
        Worker(
            grant,
            plane=self.plane,
            runner_id=self.registration.runner_id,
            executor=self.executor,
            user=self.user,
            work_dir=self.config.work_dir,
            caches=self.caches,
            shutdown=self.shutdown,
            log=self.log,
        ).run()
        return True

    def _poll(self) -> dict[str, Any] | None:
        """The long-poll runs on a helper thread so a signal stops the runner at once."""
        assert self.registration is not None
        result: dict[str, Any] = {}
        reg = self.registration

        def call() -> None:
            try:
                result["grant"] = self.plane.lease(
                    reg.runner_id, self.config.capabilities, self.config.wait_seconds
                )
            except ClientError as exc:
                result["error"] = exc

        thread = threading.Thread(target=call, name="lease-poll", daemon=True)
        thread.start()
        while thread.is_alive() and not self.shutdown.is_set():
            thread.join(timeout=0.2)
        if thread.is_alive():
            return None  # shutting down; a lease granted now expires unacked and is retried
        if "error" in result:
            raise result["error"]
        return result.get("grant")

    def _reregister(self) -> None:
        if not self.config.registration_token:
            raise FatalError(
                "runner token rejected (revoked?) and no registration token to re-register"
            )
        self.log.warning("runner token rejected, registering again")
        state.clear(self.config.state_dir)
        self.registration = None

    def _pause(self, why: str) -> None:
        delay = self._delays()
        self.log.warning(why, retry_in=round(delay, 1))
        self.shutdown.wait(delay)
