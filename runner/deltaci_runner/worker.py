"""One lease, start to finish: ack, fetch, caches, steps, artifacts, log, Complete or CancelAck.

The worker thread owns the job's processes. The heartbeat and log threads only
raise flags (`JobFlags`); the worker polls them between reads of the step's
output and reacts: SIGTERM then SIGKILL for a cancel or a timeout, SIGKILL at
once for a stale lease. Exactly one final message is sent per lease — or none,
when the lease is stale or the runner is shutting down.
"""

from __future__ import annotations

import os
import select
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaci_runner import artifacts, source, workspace
from deltaci_runner.caches import CacheResult, CacheStore
from deltaci_runner.client import (
    ClientError,
    ControlPlane,
    ProtocolError,
    StaleLease,
    encode,
    retry_transient,
)
from deltaci_runner.executor import (
    PROXY_PORT,
    Executor,
    ExecutorError,
    StepContext,
    StepProcess,
    start_host,
)
from deltaci_runner.heartbeat import Heartbeater
from deltaci_runner.jlog import ContextLogger, lease_ref, utcnow
from deltaci_runner.jobuser import JobUser
from deltaci_runner.logstream import LogSpool, LogUploader, Masker
from deltaci_runner.proxy import EgressProxy
from deltaci_runner.workspace import JobDirs

TERM_GRACE_SECONDS = 5.0
SHUTDOWN_GRACE_SECONDS = 3.0
LOG_FLUSH_SECONDS = 30.0
EGRESS_MODES = ("none", "allowlist", "open")
_FORWARDER = Path(__file__).with_name("forwarder.py")


class Interrupted(Exception):
    """The current step was stopped: reason is stale, shutdown, cancel or timeout."""

    def __init__(self, reason: str, exit_code: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code


@dataclass
class Outcome:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | CANCELED | ABANDONED
    exit_code: int | None
    summary: str


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


def first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Worker:
    def __init__(
        self,
        grant: dict[str, Any],
        *,
        plane: ControlPlane,
        runner_id: str,
        executor: Executor,
        user: JobUser,
        work_dir: Path,
        caches: CacheStore,
        shutdown: threading.Event,
        log: ContextLogger,
    ) -> None:
        self.grant = grant
        self.plane = plane
        self.runner_id = runner_id
        self.executor = executor
        self.user = user
        self.work_dir = work_dir
        self.caches = caches
        self.shutdown = shutdown
        self.lease_id = str(grant["lease_id"])
        self.spec: dict[str, Any] = grant.get("job_spec") or {}
        self.secrets = {str(k): str(v) for k, v in (grant.get("secrets") or {}).items()}
        self.clone_token = (grant.get("source") or {}).get("clone_token")
        self.log = log.bind(
            run_id=grant.get("run_id"),
            job_id=grant.get("job_id"),
            attempt=grant.get("attempt_number"),
            lease=lease_ref(self.lease_id),
        )
        self.flags = JobFlags()
        self.steps = self._steps()
        self.step_index = 0
        self.phase = "starting"
        self.dirs: JobDirs | None = None
        self.cache_results: list[CacheResult] = []
        self.ttl = float(grant.get("lease_ttl_seconds") or 120)
        self.started_mono = time.monotonic()
        self.deadline = self.started_mono + float(grant.get("max_runtime_seconds") or 3600)
        self.started_at = utcnow()
        secret_values = list(self.secrets.values())
        if self.clone_token:
            secret_values += [self.clone_token, source.basic_auth(self.clone_token)]
        self.masker = Masker(secret_values)
        self.spool = LogSpool(self.masker)
        self.uploader = LogUploader(
            plane, self.lease_id, self.spool, on_stale=self._on_stale, log=self.log
        )
        self.heartbeater = Heartbeater(
            plane,
            lease_id=self.lease_id,
            runner_id=runner_id,
            interval=float(grant.get("heartbeat_interval_seconds") or 20),
            ttl=self.ttl,
            progress=self._progress,
            bytes_sent=lambda: self.uploader.bytes_sent,
            on_cancel=self._on_cancel,
            on_stale=self._on_stale,
            log=self.log,
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> str:
        """Run the lease to its end; returns the final status (or STALE / ABANDONED)."""
        self.log.info("lease granted", job=self.spec.get("name"), steps=len(self.steps))
        if not self._ack():
            self.spool.discard()
            return "STALE"
        self.uploader.start()
        self.heartbeater.start()
        try:
            outcome = self._execute()
            return self._finish(outcome)
        finally:
            self.heartbeater.stop()
            self.uploader.stop()
            self.spool.discard()
            if self.dirs:
                workspace.remove(self.dirs)

    def _ack(self) -> bool:
        body = {
            "type": "AckLease",
            "job_id": self.grant.get("job_id"),
            "lease_id": self.lease_id,
            "runner_id": self.runner_id,
            "accepted_at": utcnow(),
        }
        deadline = time.monotonic() + float(self.grant.get("ack_timeout_seconds") or 30)
        try:
            answer = retry_transient(
                lambda: self.plane.post_json("/api/v1/internal/ack-lease", encode(body)),
                deadline=deadline,
            )
        except StaleLease as exc:
            self.log.warning("lease stale at ack", reason=exc.reason)
            return False
        except ClientError as exc:
            self.log.error("ack failed, dropping the lease", error=str(exc))
            return False
        if answer.get("accepted") is False:
            self.log.warning("ack not accepted, dropping the lease")
            return False
        self.log.info("lease acked")
        return True

    def _execute(self) -> Outcome:
        try:
            return self._run_job()
        except Interrupted as stop:
            return self._interrupted_outcome(stop)
        except source.SourceError as exc:
            self.spool.note(f"source: {exc}")
            return Outcome("FAILED", exc.exit_code, f"could not fetch the source: {exc}")
        except (ExecutorError, OSError) as exc:
            self.log.exception("job could not run")
            self.spool.note(f"runner error: {exc}")
            return Outcome("FAILED", None, f"runner error: {exc}")
        except Exception as exc:  # a runner bug must fail this job visibly, not kill the runner
            self.log.exception("unexpected runner error")
            self.spool.note("runner error: internal error (see the runner's log)")
            return Outcome("FAILED", None, f"runner internal error: {type(exc).__name__}")

    def _run_job(self) -> Outcome:
        if not self.steps:
            return Outcome("FAILED", None, "job_spec has no steps")
        self.dirs = dirs = workspace.create(self.work_dir)
        src = self.grant.get("source") or {}
        self.spool.note(
            f"job {self.spec.get('name', '?')} attempt {self.grant.get('attempt_number', '?')} "
            f"executor {self.executor.name} as uid {self.user.uid}"
        )
        self.phase = "fetching source"
        self.spool.note(f"fetching {src.get('repo_url')} at {src.get('commit_sha')}")
        source.fetch(src, dirs.src, self._run_host, self.clone_token)
        workspace.hand_over(dirs, self.user)
        cwd = self._workdir(dirs)
        self.phase = "restoring caches"
        self._restore_caches(dirs)
        proxy = None
        try:
            ctx, proxy = self._step_context(dirs, cwd)
            for index, step in enumerate(self.steps, 1):
                self._check()
                self.step_index = index
                self.phase = f"step {index}/{len(self.steps)}"
                self.spool.note(f"step {index}/{len(self.steps)}: {first_line(step)}")
                rc = self._supervise(self.executor.start(step, ctx))
                if rc != 0:
                    self.spool.note(f"step {index} failed with exit code {rc}")
                    summary = f"step {index}/{len(self.steps)} failed with exit code {rc}"
                    return Outcome("FAILED", rc, f"{summary}: {first_line(step)}")
        finally:
            if proxy:
                proxy.stop()
        self.phase = "saving caches"
        self._save_caches(dirs)
        return Outcome("SUCCEEDED", 0, f"all {len(self.steps)} steps succeeded")

    def _finish(self, outcome: Outcome) -> str:
        if self.flags.stale.is_set() or outcome.status == "ABANDONED":
            return self._abandon(outcome)
        outcome.summary = self.masker.mask(outcome.summary)
        uploaded: list[dict[str, str]] = []
        if outcome.status != "CANCELED" and self.dirs:
            self.phase = "uploading artifacts"
            try:
                uploaded = self._upload_artifacts(self.dirs)
            except StaleLease as exc:
                self._on_stale(exc.reason)
                return self._abandon(outcome)
            except (ExecutorError, OSError) as exc:  # e.g. the job removed its own workdir
                self.spool.note(f"artifacts not collected: {exc}")
        self.spool.note(f"finished: {outcome.status} ({outcome.summary})")
        self.spool.close()
        if not self.uploader.flush(LOG_FLUSH_SECONDS):
            self.log.warning("log not fully delivered", sent=self.uploader.bytes_sent)
        if self.flags.stale.is_set():
            return self._abandon(outcome)
        self.heartbeater.stop()
        if outcome.status == "CANCELED" or self.flags.cancel.is_set():
            return self._cancel_ack(outcome)
        return self._complete(outcome, uploaded)

    def _abandon(self, outcome: Outcome) -> str:
        """Stale lease or runner shutdown: stop quietly. The lease expires; nothing is final."""
        self.heartbeater.stop()
        if self.flags.stale.is_set():
            self.log.warning(
                "lease is stale, job stopped, no Complete", reason=self.flags.stale_reason
            )
            return "STALE"
        self.spool.note("runner shutting down: job abandoned, the lease will expire")
        self.spool.close()
        self.uploader.flush(5.0)
        self.log.warning("job abandoned on shutdown", summary=outcome.summary)
        return "ABANDONED"

    def _complete(self, outcome: Outcome, uploaded: list[dict[str, str]]) -> str:
        body = encode(
            {
                "type": "Complete",
                "lease_id": self.lease_id,
                "runner_id": self.runner_id,
                "status": outcome.status,
                "exit_code": self._exit_code(outcome),
                "timings": {"started_at": self.started_at, "finished_at": utcnow()},
                "artifacts": uploaded,
                "caches": [c.to_json() for c in self.cache_results],
                "summary": outcome.summary,
            }
        )  # encoded once: every retry repeats exactly the same Complete

        def send() -> dict[str, Any]:
            return self.plane.post_json("/api/v1/internal/complete", body)

        try:
            retry_transient(
                send, deadline=time.monotonic() + max(self.ttl, 30.0), on_retry=self._retrying
            )
        except StaleLease as exc:
            self.log.warning("Complete answered StaleLease", reason=exc.reason)
            return "STALE"
        except ProtocolError as exc:
            if exc.status == 409 and exc.code == "INVALID_STATE":
                self.log.info("Complete refused while cancelling; acknowledging the cancel")
                return self._cancel_ack(outcome)
            self.log.error("Complete refused", error=str(exc))
            return "REFUSED"
        except ClientError as exc:
            self.log.error("Complete not delivered", error=str(exc))
            return "UNDELIVERED"
        self.log.info("complete sent", status=outcome.status, exit_code=self._exit_code(outcome))
        return outcome.status

    @staticmethod
    def _exit_code(outcome: Outcome) -> int:
        """Always an integer on the wire: 124 (timeout(1)'s) or 1 when no process told us."""
        if outcome.exit_code is not None:
            return outcome.exit_code
        return {"SUCCEEDED": 0, "TIMED_OUT": 124}.get(outcome.status, 1)

    def _cancel_ack(self, outcome: Outcome) -> str:
        reason = self.flags.cancel_reason or "CANCELED"
        body = encode(
            {
                "type": "CancelAck",
                "lease_id": self.lease_id,
                "runner_id": self.runner_id,
                "final_status": "CANCELED",
                "ts": utcnow(),
                "artifacts": [],
                "summary": self.masker.mask(f"canceled ({reason}): {outcome.summary}"),
            }
        )
        deadline = time.monotonic() + max(self.flags.cancel_deadline, 10.0)
        try:
            retry_transient(
                lambda: self.plane.post_json("/api/v1/internal/cancel-ack", body),
                deadline=deadline,
                on_retry=self._retrying,
            )
        except ClientError as exc:
            self.log.warning("CancelAck not accepted", error=str(exc))
            return "CANCEL_UNACKED"
        self.log.info("cancel acknowledged", reason=reason)
        return "CANCELED"

    # -- processes ---------------------------------------------------------------------------------

    def _run_host(self, argv: list[str], env: dict[str, str]) -> int:
        assert self.dirs is not None
        return self._supervise(start_host(argv, self.dirs.base, env))

    def _supervise(self, proc: StepProcess) -> int:
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
                wanted = self._interruption()
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

    def _interruption(self) -> str | None:
        if self.flags.stale.is_set():
            return "stale"
        if self.shutdown.is_set():
            return "shutdown"
        if self.flags.cancel.is_set():
            return "cancel"
        if time.monotonic() >= self.deadline:
            return "timeout"
        return None

    def _check(self) -> None:
        reason = self._interruption()
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
            return f"max_runtime_seconds ({self.grant.get('max_runtime_seconds')}) exceeded"
        return "runner shutting down"

    def _interrupted_outcome(self, stop: Interrupted) -> Outcome:
        where = f" in {self.phase}"
        if stop.reason == "timeout":
            summary = f"exceeded max_runtime_seconds={self.grant.get('max_runtime_seconds')}{where}"
            return Outcome("TIMED_OUT", stop.exit_code, summary)
        if stop.reason == "cancel":
            return Outcome("CANCELED", stop.exit_code, f"canceled{where}")
        return Outcome("ABANDONED", stop.exit_code, f"{stop.reason}{where}")

    # -- pieces ------------------------------------------------------------------------------------

    def _steps(self) -> list[str]:
        steps = self.spec.get("steps") or []
        if isinstance(steps, str):
            return [steps]
        return [str(s) for s in steps if str(s).strip()]

    def _workdir(self, dirs: JobDirs) -> Path:
        relative = str(self.spec.get("workdir") or ".")
        cwd = Path(os.path.normpath(dirs.src / relative))
        real = Path(os.path.realpath(cwd))
        src = Path(os.path.realpath(dirs.src))
        if (real != src and src not in real.parents) or not real.is_dir():
            raise ExecutorError(f"workdir {relative!r} is not a directory inside the checkout")
        return cwd

    def _restore_caches(self, dirs: JobDirs) -> None:
        for spec in self.spec.get("caches") or []:
            if not isinstance(spec, dict):
                continue
            result = self.caches.restore(spec, dirs, self.user, self._remaining())
            self.cache_results.append(result)
            state = "hit" if result.hit else "miss"
            self.spool.note(
                f"cache {result.key}: {state}{' (read-only)' if result.read_only else ''}"
            )

    def _save_caches(self, dirs: JobDirs) -> None:
        for result in self.cache_results:
            if self.caches.save(result, dirs, self.user, self._remaining()):
                self.spool.note(f"cache {result.key}: saved")

    def _remaining(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    def _upload_artifacts(self, dirs: JobDirs) -> list[dict[str, str]]:
        specs = [s for s in self.spec.get("artifacts") or [] if isinstance(s, dict)]
        if not specs:
            return []
        found = artifacts.collect(specs, self._workdir(dirs), dirs.job)
        uploaded = artifacts.upload(self.plane, self.lease_id, dirs.job, found, self.log)
        self.spool.note(f"artifacts: {len(uploaded)} of {len(found)} uploaded")
        return uploaded

    def _step_context(self, dirs: JobDirs, cwd: Path) -> tuple[StepContext, EgressProxy | None]:
        egress = (self.grant.get("policy") or {}).get("egress") or {}
        mode = str(egress.get("mode") or "none")
        if mode not in EGRESS_MODES:
            mode = "none"
        if mode != "open" and not self.executor.enforces_egress:
            self.spool.note(
                f"WARNING: egress policy {mode!r} is not enforced by the shell executor"
            )
        env = self._env(dirs)
        ctx = StepContext(
            dirs=dirs,
            cwd=cwd,
            env=env,
            limits=dict(self.spec.get("limits") or {}),
            egress=mode,
            identity_files=workspace.write_identity_files(dirs, self.user),
        )
        proxy = None
        if mode == "allowlist" and self.executor.enforces_egress:
            allow = [str(h) for h in egress.get("allow") or []]
            ctx.forwarder = dirs.sandbox / "forwarder.py"
            shutil.copyfile(_FORWARDER, ctx.forwarder)
            os.chmod(ctx.forwarder, 0o644)
            ctx.proxy_socket = dirs.sandbox / "proxy.sock"
            proxy = EgressProxy(ctx.proxy_socket, allow, on_decision=self._egress_decision)
            proxy.start(owner=(self.user.uid, self.user.gid))
            proxy_url = f"http://127.0.0.1:{PROXY_PORT}"
            for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
                env[name] = proxy_url
            env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,::1"
        return ctx, proxy

    def _egress_decision(self, host: str, port: int, allowed: bool) -> None:
        if not allowed:
            self.spool.note(f"egress to {host}:{port} denied by policy")
        self.log.info("egress", host=host, port=port, allowed=allowed)

    def _env(self, dirs: JobDirs) -> dict[str, str]:
        """Base variables < job_spec.env < secrets < CI=true. Nothing from the runner's own env."""
        src = self.grant.get("source") or {}
        env = {
            "PATH": self.executor.job_path,
            "HOME": str(dirs.home),
            "TMPDIR": str(dirs.tmp),
            "LANG": "C.UTF-8",
            "USER": self.user.name,
            "LOGNAME": self.user.name,
            "SHELL": "/bin/bash",
            "DELTACI": "true",
            "DELTACI_RUN_ID": str(self.grant.get("run_id", "")),
            "DELTACI_JOB_ID": str(self.grant.get("job_id", "")),
            "DELTACI_JOB_NAME": str(self.spec.get("name", "")),
            "DELTACI_ATTEMPT": str(self.grant.get("attempt_number", "")),
            "DELTACI_COMMIT_SHA": str(src.get("commit_sha", "")),
            "DELTACI_REF": str(src.get("ref", "")),
            "DELTACI_WORKSPACE": str(dirs.src),
        }
        for name, value in {**(self.spec.get("env") or {}), **self.secrets}.items():
            name = str(name)
            if name and "=" not in name and "\0" not in name and "\0" not in str(value):
                env[name] = str(value)
        env["CI"] = "true"
        return env

    # -- callbacks from other threads --------------------------------------------------------------

    def _progress(self) -> dict[str, Any]:
        total = len(self.steps) or 1
        current = self.steps[self.step_index - 1] if self.step_index else ""
        return {
            "percent": int(100 * max(self.step_index - 1, 0) / total),
            "current_step": first_line(current),
            "step_index": self.step_index,
            "message": self.phase,
        }

    def _on_cancel(self, deadline_seconds: float, reason: str) -> None:
        if not self.flags.cancel.is_set():
            self.log.info("cancel requested", reason=reason, deadline=deadline_seconds)
        self.flags.request_cancel(deadline_seconds, reason)

    def _on_stale(self, reason: str) -> None:
        if not self.flags.stale.is_set():
            self.log.warning("lease stale", reason=reason)
        self.flags.mark_stale(reason)

    def _retrying(self, exc: ClientError, delay: float) -> None:
        self.log.warning("retrying", error=str(exc), delay=round(delay, 2))
