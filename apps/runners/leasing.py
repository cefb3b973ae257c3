"""The lease service: the one place that grants, renews and ends execution rights.

A lease is a fencing token: every runner message names it, and only a live lease held by
the calling runner can change state. Claims are atomic (FOR UPDATE SKIP LOCKED on
PostgreSQL, the attempt's compare-and-set everywhere), so two requests never get the
same attempt, and an attempt gets at most one lease ever.
"""

import fnmatch
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.actions import record
from apps.policies.effective import EffectivePolicy, policy_for
from apps.runners.choices import LEASE_LIVE, LeaseState
from apps.runners.models import Lease, Runner
from apps.runs import engine, states
from apps.runs.choices import ATTEMPT_LEASED, AttemptState, JobState, RunState
from apps.runs.failures import classify
from apps.runs.models import JobAttempt
from lib.tokens import hash_token, new_token

log = logging.getLogger(__name__)
CLAIM_BATCH = 10


class StaleLease(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidState(Exception):
    pass


@dataclass
class Granted:
    lease: Lease
    lease_id: str
    body: dict


def lease_digest(lease_id: str) -> str:
    return hash_token(lease_id)


# --- claiming ------------------------------------------------------------------------


def _image_allowed(image: str, policy: EffectivePolicy) -> bool:
    return any(fnmatch.fnmatchcase(image or "", pat) for pat in policy.allowed_images)


def _candidates(runner: Runner, exclude: list[int]):
    qs = JobAttempt.objects.filter(
        state=AttemptState.QUEUED, run__repository__environment=runner.environment
    )
    if exclude:
        qs = qs.exclude(pk__in=exclude)
    qs = qs.order_by("run_created_at", "id")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return qs.select_related("job", "run", "run__repository", "run__repository__policy")[
        :CLAIM_BATCH
    ]


def claim(runner: Runner) -> Granted | None:
    """Lease the oldest run's next eligible queued attempt to `runner`, or None."""
    caps = set(runner.capabilities)
    skipped: list[int] = []
    for _ in range(5):  # a few batches past attempts this runner cannot take
        with transaction.atomic():
            if (
                Lease.objects.filter(state__in=LEASE_LIVE).count()
                >= settings.DELTACI_MAX_CONCURRENT_LEASES
            ):
                return None
            batch = list(_candidates(runner, skipped))
            if not batch:
                return None
            busy: dict[int, int] = {}
            for attempt in batch:
                repo = attempt.run.repository
                policy = policy_for(repo)
                if not set(attempt.job.spec.get("runs_on", [])) <= caps:
                    skipped.append(attempt.pk)
                    continue
                if not _image_allowed(attempt.job.spec.get("image", ""), policy):
                    _refuse_image(attempt, policy)
                    continue
                if repo.pk not in busy:
                    busy[repo.pk] = JobAttempt.objects.filter(
                        run__repository=repo,
                        state__in=(*ATTEMPT_LEASED, AttemptState.CANCEL_REQUESTED),
                    ).count()
                if busy[repo.pk] >= policy.max_concurrent_jobs or _run_concurrency_full(attempt):
                    skipped.append(attempt.pk)
                    continue
                granted = _grant(attempt, runner, policy)
                if granted:
                    return granted
    return None


def _run_concurrency_full(attempt: JobAttempt) -> bool:
    limit = ((attempt.run.plan or {}).get("policies") or {}).get("max_concurrency")
    if not limit:
        return False
    held = JobAttempt.objects.filter(
        run=attempt.run, state__in=(*ATTEMPT_LEASED, AttemptState.CANCEL_REQUESTED)
    ).count()
    return held >= int(limit)


def _refuse_image(attempt: JobAttempt, policy: EffectivePolicy) -> None:
    """The policy changed after planning: the image is no longer allowed. Fail the
    attempt with a clear reason rather than leave it queued forever."""
    image = attempt.job.spec.get("image", "")
    if states.transition(
        states.ATTEMPT,
        attempt,
        AttemptState.CANCELED,
        why=f"image {image} not allowed by policy",
        summary=f"image {image!r} is not allowed by the repository policy",
    ):
        record(
            "policy.violation",
            run=attempt.run,
            target=attempt.job.name,
            image=image,
            allowed=policy.allowed_images,
        )
        states.transition(
            states.JOB,
            attempt.job,
            JobState.CANCELED,
            why="image not allowed",
            reason=f"image {image!r} is not allowed by the repository policy",
        )
        engine.advance_run(attempt.run)


def _grant(attempt: JobAttempt, runner: Runner, policy: EffectivePolicy) -> Granted | None:
    now = timezone.now()
    if not states.transition(
        states.ATTEMPT,
        attempt,
        AttemptState.LEASED,
        why="lease granted",
        actor=f"runner:{runner.name}",
    ):
        return None
    lease_id = new_token()
    ttl = policy.lease_ttl_seconds
    lease = Lease.objects.create(
        attempt=attempt,
        runner=runner,
        lease_hash=lease_digest(lease_id),
        lease_prefix=lease_digest(lease_id)[:12],
        granted_at=now,
        ack_deadline=now + timedelta(seconds=settings.DELTACI_ACK_TIMEOUT_SECONDS),
        expires_at=now + timedelta(seconds=ttl),
    )
    job, run = attempt.job, attempt.run
    states.transition(states.JOB, job, JobState.RUNNING, why="first attempt leased")
    if run.state == RunState.QUEUED:
        states.transition(states.RUN, run, RunState.RUNNING, why="first attempt leased")
    record(
        "lease.grant",
        actor=f"runner:{runner.name}",
        run=run,
        target=lease.lease_prefix,
        job=job.name,
        attempt=attempt.attempt_number,
    )
    body = granted_body(attempt, lease_id, policy, runner)
    return Granted(lease=lease, lease_id=lease_id, body=body)


def granted_body(
    attempt: JobAttempt, lease_id: str, policy: EffectivePolicy, runner: Runner
) -> dict:
    from apps.policies.secrets import secrets_for_job
    from apps.vcs.auth import runner_clone_token

    job, run = attempt.job, attempt.run
    spec = job.spec
    repo = run.repository
    fork = run.is_fork
    caches = []
    if policy.caching_enabled:
        for c in spec.get("caches", []):
            caches.append(
                {
                    **c,
                    "key": f"{repo.environment}:{c.get('key', '')}",
                    "read_only": bool(fork or c.get("read_only")),
                }
            )
    source = {"repo_url": repo.url, "ref": run.ref, "commit_sha": run.commit_sha}
    clone_token = runner_clone_token(repo)
    if clone_token:
        source["clone_token"] = clone_token
    return {
        "type": "LeaseGranted",
        "run_id": str(run.pk),
        "job_id": str(job.pk),
        "attempt_id": str(attempt.pk),
        "attempt_number": attempt.attempt_number,
        "lease_id": lease_id,
        "lease_ttl_seconds": policy.lease_ttl_seconds,
        "heartbeat_interval_seconds": policy.heartbeat_interval_seconds,
        "ack_timeout_seconds": settings.DELTACI_ACK_TIMEOUT_SECONDS,
        "max_runtime_seconds": int(spec.get("timeout_seconds") or policy.job_timeout_seconds),
        "source": source,
        "job_spec": {
            "name": job.name,
            "workdir": spec.get("workdir", "."),
            "image": spec.get("image", ""),
            "steps": list(spec.get("steps", [])),
            "env": {**spec.get("env", {}), "CI": "true"},
            "artifacts": list(spec.get("artifacts", [])),
            "caches": caches,
            "limits": dict(spec.get("limits", {})),
        },
        "policy": {"egress": {"mode": policy.egress_mode, "allow": list(policy.egress_allow)}},
        "secrets": secrets_for_job(
            run, list(spec.get("secrets", [])), actor=f"runner:{runner.name}"
        ),
    }


# --- lease-scoped messages -------------------------------------------------------------

_STALE_REASON = {
    LeaseState.EXPIRED: "LEASE_EXPIRED",
    LeaseState.REVOKED: "LEASE_REVOKED",
    LeaseState.COMPLETED: "LEASE_ENDED",
    LeaseState.CANCELED: "LEASE_ENDED",
}


def find_lease(runner: Runner, lease_id: str, *, lock: bool = False) -> Lease:
    """The calling runner's lease, else StaleLease UNKNOWN_LEASE — the same answer for a
    lease of another runner, so there is no oracle for other runners' leases."""
    if not isinstance(lease_id, str) or not lease_id or len(lease_id) > 200:
        raise StaleLease("UNKNOWN_LEASE")
    qs = Lease.objects.select_related(
        "attempt", "attempt__job", "attempt__run", "attempt__run__repository"
    )
    if lock:
        qs = (
            qs.select_for_update(of=("self",))
            if connection.features.has_select_for_update_of
            else qs.select_for_update()
        )
    lease = qs.filter(lease_hash=lease_digest(lease_id)).first()
    if lease is None or lease.runner_id != runner.pk:
        raise StaleLease("UNKNOWN_LEASE")
    return lease


def _require_live(lease: Lease) -> None:
    if lease.state not in LEASE_LIVE:
        raise StaleLease(_STALE_REASON[lease.state])
    now = timezone.now()
    if lease.expires_at <= now or (lease.state == LeaseState.GRANTED and lease.ack_deadline <= now):
        raise StaleLease("LEASE_EXPIRED")  # the supervisor records the expiry


def _activate(lease: Lease, actor: str) -> None:
    """GRANTED -> ACTIVE (ack, or the first heartbeat / Complete counting as one)."""
    if lease.state == LeaseState.GRANTED:
        if not states.transition(
            states.LEASE, lease, LeaseState.ACTIVE, why="acknowledged", actor=actor
        ):
            lease.refresh_from_db(fields=["state"])
            _require_live(lease)
            return
        states.transition(
            states.ATTEMPT,
            lease.attempt,
            AttemptState.STARTING,
            why="lease acknowledged",
            actor=actor,
        )


@transaction.atomic
def ack(runner: Runner, lease_id: str) -> Lease:
    lease = find_lease(runner, lease_id, lock=True)
    if lease.state == LeaseState.ACTIVE and lease.expires_at > timezone.now():
        return lease  # duplicate ack
    _require_live(lease)
    _activate(lease, f"runner:{runner.name}")
    return lease


@transaction.atomic
def heartbeat(runner: Runner, lease_id: str, progress: dict | None) -> dict:
    lease = find_lease(runner, lease_id, lock=True)
    _require_live(lease)
    actor = f"runner:{runner.name}"
    policy = policy_for(lease.attempt.run.repository)
    now = timezone.now()
    ttl = policy.lease_ttl_seconds
    Lease.objects.filter(pk=lease.pk).update(
        expires_at=now + timedelta(seconds=ttl), last_heartbeat_at=now
    )
    _activate(lease, actor)
    attempt = lease.attempt
    if attempt.state == AttemptState.STARTING:
        states.transition(
            states.ATTEMPT, attempt, AttemptState.RUNNING, why="first heartbeat", actor=actor
        )
    if progress:
        JobAttempt.objects.filter(pk=attempt.pk).update(progress=progress)
    attempt.refresh_from_db(fields=["state", "cancel_reason", "cancel_requested_at"])
    cancel = attempt.state == AttemptState.CANCEL_REQUESTED
    remaining = 0
    if cancel and attempt.cancel_requested_at:
        deadline = attempt.cancel_requested_at + timedelta(
            seconds=settings.DELTACI_CANCEL_DEADLINE_SECONDS
        )
        remaining = max(0, int((deadline - now).total_seconds()))
    return {
        "type": "HeartbeatAck",
        "lease_id": lease_id,
        "extend_lease": True,
        "new_lease_ttl_seconds": ttl,
        "cancel_requested": cancel,
        "cancel_deadline_seconds": remaining,
        "cancel_reason": attempt.cancel_reason or None if cancel else None,
    }


def complete_digest(body: dict) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


@transaction.atomic
def complete(runner: Runner, lease_id: str, body: dict, recorded_keys: set[str]) -> None:
    """Accept the runner's result. `recorded_keys` are the artifact keys (already
    checked to exist in this attempt's prefix) to record."""
    from apps.artifacts import logs
    from apps.artifacts.models import Artifact

    lease = find_lease(runner, lease_id, lock=True)
    digest = complete_digest(body)
    if lease.state == LeaseState.COMPLETED:
        if lease.complete_digest == digest:
            return  # the same Complete again: same answer, no change
        raise InvalidState("this lease already completed with a different result")
    _require_live(lease)
    attempt = lease.attempt
    if attempt.state == AttemptState.CANCEL_REQUESTED:
        raise InvalidState("the attempt is being cancelled; send CancelAck")
    actor = f"runner:{runner.name}"
    _activate(lease, actor)
    if not states.transition(
        states.LEASE,
        lease,
        LeaseState.COMPLETED,
        why="complete",
        actor=actor,
        complete_digest=digest,
    ):
        raise InvalidState("the lease changed state; result ignored")
    status = body["status"]
    exit_code = body.get("exit_code")
    fields = {"exit_code": exit_code, "summary": str(body.get("summary") or "")[:10000]}
    if status != AttemptState.SUCCEEDED:
        c = classify(
            status=status,
            exit_code=exit_code,
            log_tail=logs.tail(attempt),
            job_name=attempt.job.name,
        )
        fields.update(
            failure_class=c.failure_class, failure_confidence=c.confidence, failure_detail=c.detail
        )
    states.transition(
        states.ATTEMPT, attempt, status, why=f"complete: {status}", actor=actor, **fields
    )
    if recorded_keys:
        Artifact.objects.filter(attempt=attempt, key__in=recorded_keys).update(recorded=True)
    transaction.on_commit(lambda: _after_attempt_end(attempt.pk))
    engine.resolve_attempt(attempt, actor=actor)


@transaction.atomic
def cancel_ack(runner: Runner, lease_id: str, body: dict) -> None:
    lease = find_lease(runner, lease_id, lock=True)
    _require_live(lease)
    attempt = lease.attempt
    if attempt.state != AttemptState.CANCEL_REQUESTED:
        raise InvalidState("no cancellation is pending for this lease")
    actor = f"runner:{runner.name}"
    _activate(lease, actor)
    states.transition(
        states.LEASE, lease, LeaseState.CANCELED, why="cancel acknowledged", actor=actor
    )
    final_attempt_after_cancel(
        attempt,
        why="cancel acknowledged",
        actor=actor,
        summary=str(body.get("summary") or "")[:10000],
    )
    transaction.on_commit(lambda: _after_attempt_end(attempt.pk))
    engine.resolve_attempt(attempt, actor=actor)


def final_attempt_after_cancel(attempt: JobAttempt, *, why: str, actor: str, **fields) -> None:
    """A cancelled attempt ends CANCELED, or TIMED_OUT when the cancel was a job timeout."""
    from apps.runs.choices import CancelReason, FailureClass

    if attempt.cancel_reason == CancelReason.TIMEOUT:
        fields.update(
            failure_class=FailureClass.INFRASTRUCTURE,
            failure_confidence=0.6,
            failure_detail="job exceeded its time limit",
        )
        states.transition(
            states.ATTEMPT, attempt, AttemptState.TIMED_OUT, why=why, actor=actor, **fields
        )
    else:
        states.transition(
            states.ATTEMPT, attempt, AttemptState.CANCELED, why=why, actor=actor, **fields
        )


def _after_attempt_end(attempt_id: int) -> None:
    from apps.artifacts.tasks import finalize_log

    finalize_log.delay(attempt_id)
