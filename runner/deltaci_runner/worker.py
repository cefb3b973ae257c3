"""One lease, start to finish: ack, fetch, caches, steps, artifacts, log, Complete or CancelAck.

The worker thread owns the job's processes. The heartbeat and log threads only
raise flags (`JobFlags`); the worker polls them between reads of the step's
output and reacts: SIGTERM then SIGKILL for a cancel or a timeout, SIGKILL at
once for a stale lease. Exactly one final message is sent per lease — or none,
when the lease is stale or the runner is shutting down.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from deltaci_runner import artifacts, final, leftovers, source, workspace
from deltaci_runner.bwrap import PROXY_PORT
from deltaci_runner.caches import CacheResult, CacheStore
from deltaci_runner.client import (
    ClientError,
    ControlPlane,
    StaleLease,
    encode,
    retry_transient,
)
from deltaci_runner.executor import Executor
from deltaci_runner.final import Outcome
from deltaci_runner.heartbeat import Heartbeater
from deltaci_runner.jlog import ContextLogger, lease_ref, utcnow
from deltaci_runner.jobenv import egress_policy, job_env, proxy_env
from deltaci_runner.jobuser import JobUser
from deltaci_runner.logstream import LogSpool, LogUploader, Masker
from deltaci_runner.process import ExecutorError, StepContext, start_host
from deltaci_runner.proxy import EgressProxy
from deltaci_runner.supervisor import Interrupted, JobFlags, Supervisor
from deltaci_runner.workspace import JobDirs

LOG_FLUSH_SECONDS = 30.0
_FORWARDER = Path(__file__).with_name("forwarder.py")


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
        self.image_digest = ""
        self.ttl = float(grant.get("lease_ttl_seconds") or 120)
        self.started_mono = time.monotonic()
        self.deadline = self.started_mono + float(grant.get("max_runtime_seconds") or 3600)
        self.started_at = utcnow()
        secret_values = list(self.secrets.values())
        if self.clone_token:
            secret_values += [self.clone_token, source.basic_auth(self.clone_token)]
        self.masker = Masker(secret_values)
        self.spool = LogSpool(self.masker)
        self.supervisor = Supervisor(
            self.spool,
            self.flags,
            shutdown,
            deadline=self.deadline,
            max_runtime=grant.get("max_runtime_seconds"),
            log=self.log,
        )
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
            leftovers.kill_orphans()  # what a step double-forked, adopted as subreaper
            if self.dirs:
                leftovers.kill_under(self.dirs.base)  # ... or what escaped that link
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
        if self.grant.get("image_note"):  # the control plane's words: its image is not used
            self.spool.note(str(self.grant["image_note"])[:1000])
        self.phase = "fetching source"
        self.spool.note(f"fetching {src.get('repo_url')} at {src.get('commit_sha')}")
        source.fetch(src, dirs.src, self._run_host, self.clone_token)
        workspace.hand_over(dirs, self.user)
        cwd = self._workdir(dirs)
        self.phase = "restoring caches"
        self._restore_caches(dirs)
        ctx, proxy = self._step_context(dirs, cwd)
        try:
            self.phase = "preparing the executor"
            image = str(self.spec.get("image") or "")
            self.image_digest = self.executor.prepare(
                ctx, image, self.supervisor.run, self.spool.note
            )
            for index, step in enumerate(self.steps, 1):
                self.supervisor.check()
                self.step_index = index
                self.phase = f"step {index}/{len(self.steps)}"
                self.spool.note(f"step {index}/{len(self.steps)}: {first_line(step)}")
                began = time.monotonic()
                rc = self.supervisor.run(self.executor.start(step, ctx))
                took = time.monotonic() - began  # the run page shows it per step section
                if rc != 0:
                    self.executor.after_failure(ctx, self.spool.note)
                    self.spool.note(f"step {index} failed with exit code {rc} after {took:.2f}s")
                    summary = f"step {index}/{len(self.steps)} failed with exit code {rc}"
                    return Outcome("FAILED", rc, f"{summary}: {first_line(step)}")
                self.spool.note(f"step {index} done in {took:.2f}s")
        finally:
            self.executor.release(ctx)
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
        body = {
            "type": "Complete",
            "lease_id": self.lease_id,
            "runner_id": self.runner_id,
            "status": outcome.status,
            "exit_code": outcome.wire_exit_code,
            "timings": {"started_at": self.started_at, "finished_at": utcnow()},
            "artifacts": uploaded,
            "caches": [c.to_json() for c in self.cache_results],
            "summary": outcome.summary,
        }
        if self.image_digest:
            body["image"] = {"ref": self.spec.get("image"), "digest": self.image_digest}
        try:
            result = final.send_complete(self.plane, body, within=max(self.ttl, 30.0), log=self.log)
        except final.CancelPending:
            self.log.info("Complete refused while cancelling; acknowledging the cancel")
            return self._cancel_ack(outcome)
        return outcome.status if result == "SENT" else result

    def _cancel_ack(self, outcome: Outcome) -> str:
        reason = self.flags.cancel_reason or "CANCELED"
        acked = final.send_cancel_ack(
            self.plane,
            lease_id=self.lease_id,
            runner_id=self.runner_id,
            summary=self.masker.mask(f"canceled ({reason}): {outcome.summary}"),
            within=max(self.flags.cancel_deadline, 10.0),
            log=self.log,
        )
        return "CANCELED" if acked else "CANCEL_UNACKED"

    # -- processes ---------------------------------------------------------------------------------

    def _run_host(self, argv: list[str], env: dict[str, str]) -> int:
        assert self.dirs is not None
        return self.supervisor.run(start_host(argv, self.dirs.base, env))

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
        mode, allow = egress_policy(self.grant)
        if mode != "open" and not self.executor.enforces_egress:
            self.spool.note(
                f"WARNING: egress policy {mode!r} is not enforced by the shell executor"
            )
        env = job_env(self.grant, self.executor.view(dirs), self.user, self.executor.job_path)
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
            ctx.forwarder = dirs.sandbox / "forwarder.py"
            shutil.copyfile(_FORWARDER, ctx.forwarder)
            os.chmod(ctx.forwarder, 0o644)
            ctx.proxy_socket = dirs.sandbox / "proxy.sock"
            proxy = EgressProxy(ctx.proxy_socket, allow, on_decision=self._egress_decision)
            proxy.start(owner=(self.user.uid, self.user.gid))
            env.update(proxy_env(PROXY_PORT))
        return ctx, proxy

    def _egress_decision(self, host: str, port: int, allowed: bool) -> None:
        if not allowed:
            self.spool.note(f"egress to {host}:{port} denied by policy")
        self.log.info("egress", host=host, port=port, allowed=allowed)

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
