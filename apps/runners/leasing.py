"""The lease service: the one place that grants, renews and ends execution rights.

A lease is a fencing token: every runner message names it, and only a live lease held by
the calling runner can change state. Claims lock one queued attempt with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (the attempt's compare-and-set everywhere), so two
requests never get the same attempt, and the lease's one-to-one key means an attempt gets
at most one lease ever. Lease ids are 256-bit secrets stored only as SHA-256.
"""

import fnmatch
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.utils import timezone

from apps.audit.actions import record
from apps.policies.effective import EffectivePolicy, policy_for
from apps.runners import claimsql, leasesql
from apps.runners.choices import LEASE_LIVE, LeaseState
from apps.runners.jobspec import granted_body
from apps.runners.models import Lease, Runner
from apps.runs import engine, states
from apps.runs.choices import (
    ATTEMPT_LEASED,
    AttemptState,
    CancelReason,
    FailureClass,
    JobState,
    RunState,
)
from apps.runs.models import JobAttempt
from lib.db import begin_write, fetch_prepared
from lib.logging import bind
from lib.tokens import hash_token, new_token

log = logging.getLogger(__name__)
CLAIM_SCAN = 20  # queued attempts examined per round
CLAIM_ROUNDS = 5  # rounds past attempts this runner cannot take, or that others are taking
# Below a limit by fewer than this many, concurrent claims take turns (see _take_turns):
# more than this many claims at once would be needed to overshoot the limit.
NEAR_LIMIT = 64
HELD = (*ATTEMPT_LEASED, AttemptState.CANCEL_REQUESTED)
_AGAIN = object()


class StaleLease(Exception):
    """The lease is expired, revoked, ended or unknown to the caller: nothing changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidState(Exception):
    """The message is not acceptable in the lease's current state: nothing changed."""


@dataclass
class Granted:
    lease: Lease
    lease_id: str
    body: dict


def lease_digest(lease_id: str) -> str:
    return hash_token(lease_id)


# --- claiming ------------------------------------------------------------------------


@dataclass
class _Passed:
    """What this claim already ruled out: attempts it cannot take, and repositories and
    runs at their concurrency limit."""

    attempts: set[int] = field(default_factory=set)
    repos: set[int] = field(default_factory=set)
    runs: set[int] = field(default_factory=set)

    def narrow(self, qs):
        if self.attempts:
            qs = qs.exclude(pk__in=self.attempts)
        if self.repos:
            qs = qs.exclude(run__repository_id__in=self.repos)
        if self.runs:
            qs = qs.exclude(run_id__in=self.runs)
        return qs


def claim(runner: Runner, capabilities: list[str] | None = None) -> Granted | None:
    """Lease the oldest run's next eligible queued attempt to `runner`, or None.

    A runner may narrow its registered capabilities in the request, never widen them.
    Each round is one short transaction; nothing is held between rounds."""
    caps = frozenset(runner.capabilities)
    if capabilities is not None:
        caps &= frozenset(capabilities)
    passed = _Passed()
    claim_round = _claim_round_pg if connection.vendor == "postgresql" else _claim_round
    for _ in range(CLAIM_ROUNDS):
        outcome = claim_round(runner, caps, passed)
        if outcome is not _AGAIN:
            return outcome
    return None


def _queued(runner: Runner, passed: _Passed):
    qs = JobAttempt.objects.filter(
        state=AttemptState.QUEUED, run__repository__environment=runner.environment
    )
    return passed.narrow(qs).order_by("run_created_at", "id")


def _claim_round_pg(runner: Runner, caps: frozenset, passed: _Passed):
    """PostgreSQL: capabilities are matched in SQL (jsonb containment), so one statement
    finds and locks (SKIP LOCKED) the oldest eligible attempt (apps/runners/claimsql.py);
    the rest is _take()."""
    with transaction.atomic():
        live = _live_leases()
        if live is None:
            return None
        attempt = claimsql.lock_next(
            runner.environment, sorted(caps), passed.attempts, passed.repos, passed.runs
        )
        if attempt is None:
            return None
        if not _matches(attempt.job.spec.get("runs_on"), caps):  # e.g. not a list
            passed.attempts.add(attempt.pk)
            return _AGAIN
        return _take(attempt, runner, live, passed)


def _claim_round(runner: Runner, caps: frozenset, passed: _Passed):
    """Any database: scan a page of queued attempts without a transaction, match
    capabilities in Python, then lock and grant in one short transaction (an empty poll
    writes nothing, which matters to SQLite's single writer)."""
    rows = list(_queued(runner, passed).values_list("pk", "job__spec__runs_on")[:CLAIM_SCAN])
    if not rows:
        return None
    more = _AGAIN if len(rows) == CLAIM_SCAN else None
    eligible = [pk for pk, runs_on in rows if _matches(runs_on, caps)]
    passed.attempts.update(pk for pk, _ in rows if pk not in eligible)
    if not eligible:
        return more
    with transaction.atomic():
        begin_write()
        live = _live_leases()
        if live is None:
            return None
        qs = _with_grant_data(JobAttempt.objects.filter(pk__in=eligible, state=AttemptState.QUEUED))
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        attempt = qs.order_by("run_created_at", "id").first()
        if attempt is None:  # all taken, or being taken, by concurrent claims
            passed.attempts.update(eligible)
            return more
        return _take(attempt, runner, live, passed)


def _with_grant_data(qs):
    """What a grant needs, in the same query: the job, run, repository and policy, and
    the run's own max_concurrency (not the whole plan)."""
    return (
        qs.select_related("job", "run", "run__repository", "run__repository__policy")
        .defer("run__plan", "run__recipe")
        .annotate(
            run_limit=KeyTextTransform("max_concurrency", KeyTransform("policies", F("run__plan")))
        )
    )


def _take(attempt: JobAttempt, runner: Runner, live: int, passed: _Passed):
    """Grant the locked `attempt` unless a policy or a limit says otherwise."""
    run, repo = attempt.run, attempt.run.repository
    policy = policy_for(repo)
    if run.state not in (RunState.QUEUED, RunState.RUNNING):
        passed.runs.add(run.pk)
        return _AGAIN
    if not image_allowed(attempt.job.spec.get("image", ""), policy):
        _refuse_image(attempt, policy)
        return _AGAIN
    if _full(f"repo:{repo.pk}", policy.max_concurrent_jobs, live, run__repository=repo):
        passed.repos.add(repo.pk)
        return _AGAIN
    run_limit = _int(attempt.run_limit)
    if run_limit and _full(f"run:{run.pk}", run_limit, live, run=run):
        passed.runs.add(run.pk)
        return _AGAIN
    return _grant(attempt, runner, policy) or _AGAIN


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _matches(runs_on, caps: frozenset) -> bool:
    """A job's `runs_on` labels must all be among the runner's capabilities."""
    if not runs_on:
        return True
    if not isinstance(runs_on, list):
        return False
    return all(isinstance(label, str) and label in caps for label in runs_on)


def image_allowed(image: str, policy: EffectivePolicy) -> bool:
    return any(fnmatch.fnmatchcase(image or "", pat) for pat in policy.allowed_images)


def _take_turns(key: str) -> None:
    """Serialise the claims that are close to one limit (PostgreSQL advisory lock, held
    to the end of this transaction); SQLite serialises writers anyway."""
    if connection.vendor == "postgresql":
        lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock])


_COUNT_LIVE = f"SELECT COUNT(*) FROM {Lease._meta.db_table} WHERE state IN ('GRANTED', 'ACTIVE')"  # noqa: S608


def _count_live() -> int:
    return fetch_prepared(_COUNT_LIVE, {})[0][0]  # every claim asks: no ORM here


def _live_leases() -> int | None:
    """How many leases are live, or None when the global limit is reached."""
    limit = settings.DELTACI_MAX_CONCURRENT_LEASES
    live = _count_live()
    if live + NEAR_LIMIT >= limit:
        _take_turns("leases")
        live = _count_live()
    return live if live < limit else None


def _full(key: str, limit: int, live: int, **scope) -> bool:
    """Does `scope` (a repository or a run) already hold `limit` attempts? Held attempts
    all have live leases, so far below the limit no count is needed."""
    if live + NEAR_LIMIT < limit:
        return False
    _take_turns(key)
    return JobAttempt.objects.filter(state__in=HELD, **scope).count() >= limit


def _refuse_image(attempt: JobAttempt, policy: EffectivePolicy) -> None:
    """The policy changed after planning and no longer allows the job's image: end the
    attempt and the job with a clear reason rather than leave them queued forever."""
    image = attempt.job.spec.get("image", "")
    message = f"image {image!r} is not allowed by the repository policy"
    if not states.transition(
        states.ATTEMPT, attempt, AttemptState.CANCELED, why="image not allowed", summary=message
    ):
        return
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
        reason_code="IMAGE_NOT_ALLOWED",
        reason=message,
    )
    engine.advance_run(attempt.run)


def _grant(attempt: JobAttempt, runner: Runner, policy: EffectivePolicy) -> Granted | None:
    actor = f"runner:{runner.name}"
    if not states.transition(
        states.ATTEMPT, attempt, AttemptState.LEASED, why="lease granted", actor=actor
    ):
        return None
    now = timezone.now()
    lease_id = new_token()
    digest = lease_digest(lease_id)
    lease = Lease.objects.create(
        attempt=attempt,
        runner=runner,
        lease_hash=digest,
        lease_prefix=digest[:12],
        granted_at=now,
        ack_deadline=now + timedelta(seconds=settings.DELTACI_ACK_TIMEOUT_SECONDS),
        expires_at=now + timedelta(seconds=policy.lease_ttl_seconds),
    )
    job, run = attempt.job, attempt.run
    if job.state == JobState.QUEUED:
        states.transition(states.JOB, job, JobState.RUNNING, why="first attempt leased")
    if run.state == RunState.QUEUED:
        states.transition(states.RUN, run, RunState.RUNNING, why="first attempt leased")
    record(
        "lease.grant",
        actor=actor,
        run=run,
        target=lease.lease_prefix,
        job=job.name,
        attempt=attempt.attempt_number,
    )
    return Granted(
        lease=lease, lease_id=lease_id, body=granted_body(attempt, lease_id, policy, runner)
    )


# --- lease-scoped messages -------------------------------------------------------------

_STALE_REASON = {
    LeaseState.EXPIRED: "LEASE_EXPIRED",
    LeaseState.REVOKED: "LEASE_REVOKED",
    LeaseState.COMPLETED: "LEASE_ENDED",
    LeaseState.CANCELED: "LEASE_ENDED",
}


_FULL = (
    "attempt",
    "attempt__job",
    "attempt__run",
    "attempt__run__repository",
    "attempt__run__repository__policy",
)
# What ending an attempt needs (the repository and its policy load on the rare paths).
_ENDING = ("attempt", "attempt__job", "attempt__run")


def find_lease(
    runner: Runner, lease_id: str, *, lock: bool = False, related: tuple[str, ...] = _FULL
) -> Lease:
    """The calling runner's lease, else StaleLease UNKNOWN_LEASE — the same answer for a
    lease of another runner, so there is no oracle for other runners' leases. `related`
    names what to load with it (less is cheaper)."""
    if not isinstance(lease_id, str) or not lease_id or len(lease_id) > 200:
        raise StaleLease("UNKNOWN_LEASE")
    if lock:
        begin_write()
    lease = leasesql.lease_by_hash(lease_digest(lease_id), related, lock=lock)
    if lease is None or lease.runner_id != runner.pk:
        raise StaleLease("UNKNOWN_LEASE")
    _bind_scope(lease.attempt.run_id, lease.attempt.job_id)
    return lease


def _bind_scope(run_id: int, job_id: int) -> None:
    """Log lines of this request carry the run and job of the (verified) lease; the
    request's log scope (apps/ops/middleware.py) ends with the request."""
    bind(run_id=run_id, job_id=job_id)


def stale_reason(lease: Lease, now: datetime | None = None) -> str | None:
    """Why messages on this lease are refused, or None while it is live. A lease past its
    TTL (or its ack deadline) is refused at once; the supervisor records the expiry."""
    if lease.state not in LEASE_LIVE:
        return _STALE_REASON[lease.state]
    now = now or timezone.now()
    if lease.expires_at <= now or (lease.state == LeaseState.GRANTED and lease.ack_deadline <= now):
        return "LEASE_EXPIRED"
    return None


def require_live(lease: Lease) -> None:
    reason = stale_reason(lease)
    if reason:
        raise StaleLease(reason)


def _live_now(now: datetime) -> Q:
    return Q(state=LeaseState.ACTIVE, expires_at__gt=now) | Q(
        state=LeaseState.GRANTED, expires_at__gt=now, ack_deadline__gt=now
    )


def _activate(lease: Lease, actor: str) -> None:
    """GRANTED -> ACTIVE (AckLease, or the first heartbeat or a Complete counting as one)
    and the attempt LEASED -> STARTING."""
    if lease.state != LeaseState.GRANTED:
        return
    if not states.transition(
        states.LEASE, lease, LeaseState.ACTIVE, why="acknowledged", actor=actor
    ):
        lease.refresh_from_db(fields=["state", "expires_at", "ack_deadline"])
        require_live(lease)
        return
    if lease.attempt.state == AttemptState.LEASED:
        states.transition(
            states.ATTEMPT,
            lease.attempt,
            AttemptState.STARTING,
            why="lease acknowledged",
            actor=actor,
        )


@transaction.atomic
def ack(runner: Runner, lease_id: str) -> Lease:
    """AckLease: GRANTED -> ACTIVE; a duplicate on a live ACTIVE lease is answered again."""
    lease = find_lease(runner, lease_id, lock=True, related=("attempt",))
    require_live(lease)
    _activate(lease, f"runner:{runner.name}")
    return lease


def _uploading(progress: dict | None) -> bool:
    """The optional progress report RUNNING -> UPLOADING: the step or message says so."""
    if not progress:
        return False
    words = f"{progress.get('current_step') or ''} {progress.get('message') or ''}".lower()
    return "uploading" in words


def heartbeat(runner: Runner, lease_id: str, progress: dict | None = None) -> dict:
    """Renew the TTL with no transaction and no row lock on this hot path (the supervisor
    locks and re-checks before expiring, so a renewal that lands first wins). The TTL is
    the one the lease was granted with. The first heartbeat also acknowledges the lease
    and starts the attempt."""
    if not isinstance(lease_id, str) or not lease_id or len(lease_id) > 200:
        raise StaleLease("UNKNOWN_LEASE")
    progress = dict(progress) if progress else None
    if connection.vendor == "postgresql":
        fast = _renew_in_one_statement(runner, lease_id, progress)
        if fast is not None:
            return _after_renewal(runner, lease_id, progress, *fast)
    return _heartbeat_orm(runner, lease_id, progress)


def _after_renewal(
    runner: Runner,
    lease_id: str,
    progress: dict | None,
    lease_pk: int,
    lease_state: str,
    ttl: timedelta,
    attempt_pk: int,
    attempt_state: str,
    cancel_reason: str,
    cancel_requested_at: datetime | None,
    run_id: int,
    job_id: int,
    now: datetime,
) -> dict:
    """The rest of a heartbeat the one statement renewed: usually nothing; the first
    heartbeat also moves the lease and the attempt (compare-and-set, as ever)."""
    _bind_scope(run_id, job_id)
    steady = (
        lease_state == LeaseState.ACTIVE
        and attempt_state in _STEADY
        and not (attempt_state == AttemptState.RUNNING and _uploading(progress))
    )
    if not steady:
        lease = Lease(pk=lease_pk, state=lease_state)
        lease.attempt = JobAttempt(
            pk=attempt_pk, state=attempt_state, run_id=run_id, job_id=job_id, progress=None
        )
        _advance_on_heartbeat(lease, f"runner:{runner.name}", progress)
        attempt_state = lease.attempt.state
    return _heartbeat_ack(lease_id, ttl, attempt_state, cancel_reason, cancel_requested_at, now)


_STEADY = (AttemptState.RUNNING, AttemptState.UPLOADING, AttemptState.CANCEL_REQUESTED)
_RENEW_SQL = """
WITH renewed AS (
  UPDATE {lease} AS l
  SET expires_at = %(now)s + (l.expires_at - COALESCE(l.last_heartbeat_at, l.granted_at)),
      last_heartbeat_at = %(now)s
  FROM {attempt} AS a
  WHERE l.lease_hash = %(hash)s AND l.runner_id = %(runner)s AND a.id = l.attempt_id
    AND l.expires_at > %(now)s
    AND (l.state = 'ACTIVE' OR (l.state = 'GRANTED' AND l.ack_deadline > %(now)s))
  RETURNING l.id AS lease_id, l.state AS lease_state, l.expires_at - l.last_heartbeat_at AS ttl,
    a.id AS attempt_id, a.state AS attempt_state, a.cancel_reason, a.cancel_requested_at,
    a.run_id, a.job_id
), progressed AS (
  UPDATE {attempt} SET progress = %(progress)s::jsonb
  WHERE %(progress)s::jsonb IS NOT NULL AND id = (
    SELECT attempt_id FROM renewed
    WHERE lease_state = 'ACTIVE' AND attempt_state IN ('RUNNING', 'UPLOADING', 'CANCEL_REQUESTED')
  )
  RETURNING id
)
SELECT lease_id, lease_state, ttl, attempt_id, attempt_state, cancel_reason,
  cancel_requested_at, run_id, job_id
FROM renewed
"""


def _renew_in_one_statement(runner: Runner, lease_id: str, progress: dict | None):
    """PostgreSQL: check and renew the lease, store the progress report and read the
    attempt's cancel state in one statement. None when the lease is not live for this
    runner (the general path then says why)."""
    now = timezone.now()
    sql = _RENEW_SQL.format(lease=Lease._meta.db_table, attempt=JobAttempt._meta.db_table)
    params = {
        "now": now,
        "hash": lease_digest(lease_id),
        "runner": runner.pk,
        "progress": json.dumps(progress) if progress else None,
    }
    rows = fetch_prepared(sql, params)
    return (*rows[0], now) if rows else None


def _heartbeat_ack(
    lease_id: str,
    ttl: timedelta,
    attempt_state: str,
    cancel_reason: str,
    cancel_requested_at: datetime | None,
    now: datetime,
) -> dict:
    cancel = attempt_state == AttemptState.CANCEL_REQUESTED
    remaining = 0
    if cancel and cancel_requested_at:
        deadline = cancel_requested_at + timedelta(seconds=settings.DELTACI_CANCEL_DEADLINE_SECONDS)
        remaining = max(0, int((deadline - now).total_seconds()))
    return {
        "type": "HeartbeatAck",
        "lease_id": lease_id,
        "extend_lease": True,
        "new_lease_ttl_seconds": round(ttl.total_seconds()),
        "cancel_requested": cancel,
        "cancel_deadline_seconds": remaining,
        "cancel_reason": (cancel_reason or None) if cancel else None,
    }


def _heartbeat_orm(runner: Runner, lease_id: str, progress: dict | None) -> dict:
    """The general path: every database, the first heartbeat, progress reports, and the
    precise reason when the lease is not live."""
    lease = find_lease(runner, lease_id, related=("attempt",))
    require_live(lease)
    attempt = lease.attempt
    ttl = lease.expires_at - (lease.last_heartbeat_at or lease.granted_at)
    now = timezone.now()
    renewed = Lease.objects.filter(_live_now(now), pk=lease.pk).update(
        expires_at=now + ttl, last_heartbeat_at=now
    )
    if not renewed:  # the supervisor (or a Complete) got there first
        lease.refresh_from_db(fields=["state", "expires_at", "ack_deadline"])
        raise StaleLease(stale_reason(lease, now) or "LEASE_EXPIRED")
    steps = (
        lease.state == LeaseState.GRANTED
        or attempt.state in (AttemptState.LEASED, AttemptState.STARTING)
        or (attempt.state == AttemptState.RUNNING and _uploading(progress))
    )
    if steps or (progress and progress != attempt.progress):
        _advance_on_heartbeat(lease, f"runner:{runner.name}", progress)
    return _heartbeat_ack(
        lease_id, ttl, attempt.state, attempt.cancel_reason, attempt.cancel_requested_at, now
    )


@transaction.atomic
def _advance_on_heartbeat(lease: Lease, actor: str, progress: dict | None) -> None:
    attempt = lease.attempt
    _activate(lease, actor)
    if attempt.state == AttemptState.STARTING:
        states.transition(
            states.ATTEMPT, attempt, AttemptState.RUNNING, why="first heartbeat", actor=actor
        )
    if attempt.state == AttemptState.RUNNING and _uploading(progress):
        states.transition(
            states.ATTEMPT, attempt, AttemptState.UPLOADING, why="uploading", actor=actor
        )
    if progress and progress != attempt.progress:
        JobAttempt.objects.filter(pk=attempt.pk).update(progress=progress)
        attempt.progress = progress


def complete_digest(message: dict) -> str:
    """The fingerprint of a Complete, so its exact repeat is recognised."""
    canonical = {k: v for k, v in message.items() if k != "type"}
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


@transaction.atomic
def complete(
    runner: Runner, lease_id: str, message: dict, recorded_keys: frozenset[str] = frozenset()
) -> bool:
    """Accept the runner's result; False when this is the repeat of the accepted one.

    `message` is the validated Complete; `recorded_keys` the artifact keys already
    checked to lie in this attempt's prefix (see apps/runners/uploads.py)."""
    from apps.runs.failures import classify, log_tail

    lease = find_lease(runner, lease_id, lock=True, related=_ENDING)
    digest = complete_digest(message)
    if lease.state == LeaseState.COMPLETED:
        if lease.complete_digest == digest:
            return False  # the same Complete again: the same answer, no change
        raise InvalidState("this lease already completed with a different result")
    require_live(lease)
    attempt = lease.attempt
    if attempt.state == AttemptState.CANCEL_REQUESTED:
        raise InvalidState("the attempt is being cancelled; send CancelAck")
    if attempt.state not in ATTEMPT_LEASED:
        raise InvalidState(f"the attempt is {attempt.state}")
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
    status = message["status"]
    exit_code = message.get("exit_code")
    fields = {"exit_code": exit_code, "summary": str(message.get("summary") or "")[:10000]}
    if status != AttemptState.SUCCEEDED:
        c = classify(
            status=status,
            exit_code=exit_code,
            log_tail=log_tail(attempt),
            job_name=attempt.job.name,
        )
        fields.update(
            failure_class=c.failure_class, failure_confidence=c.confidence, failure_detail=c.detail
        )
    states.transition(
        states.ATTEMPT, attempt, status, why=f"complete: {status}", actor=actor, **fields
    )
    _record_artifacts(attempt, recorded_keys)
    after_attempt_end(attempt)
    engine.resolve_attempt(attempt, actor=actor)
    return True


@transaction.atomic
def cancel_ack(
    runner: Runner, lease_id: str, message: dict, recorded_keys: frozenset[str] = frozenset()
) -> None:
    """CancelAck: only while a cancel is pending and the lease is live."""
    lease = find_lease(runner, lease_id, lock=True, related=_ENDING)
    require_live(lease)
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
        summary=str(message.get("summary") or "")[:10000],
    )
    _record_artifacts(attempt, recorded_keys)
    after_attempt_end(attempt)
    engine.resolve_attempt(attempt, actor=actor)


def _record_artifacts(attempt: JobAttempt, keys: frozenset[str]) -> None:
    from apps.artifacts.models import Artifact

    if keys:
        Artifact.objects.filter(attempt=attempt, key__in=keys).update(recorded=True)


def final_attempt_after_cancel(attempt: JobAttempt, *, why: str, actor: str, **fields) -> bool:
    """A cancelled attempt ends CANCELED, or TIMED_OUT when the cancel was a job timeout."""
    if attempt.cancel_reason == CancelReason.TIMEOUT:
        fields.update(
            failure_class=FailureClass.INFRASTRUCTURE,
            failure_confidence=0.6,
            failure_detail="job exceeded its time limit",
        )
        return states.transition(
            states.ATTEMPT,
            attempt,
            AttemptState.TIMED_OUT,
            why=why,
            actor=actor,
            only_from=(AttemptState.CANCEL_REQUESTED,),
            **fields,
        )
    return states.transition(
        states.ATTEMPT,
        attempt,
        AttemptState.CANCELED,
        why=why,
        actor=actor,
        only_from=(AttemptState.CANCEL_REQUESTED,),
        **fields,
    )


# --- ending a lease from the control plane ----------------------------------------------


def lock_lease(pk: int) -> Lease | None:
    """A lease row locked for this transaction (call inside atomic())."""
    begin_write()
    return (
        Lease.objects.select_for_update(of=("self",))
        .select_related(
            "attempt", "attempt__job", "attempt__run", "attempt__run__repository", "runner"
        )
        .defer("attempt__run__plan", "attempt__run__recipe")
        .filter(pk=pk)
        .first()
    )


def end_lease(lease: Lease, to: str, *, why: str, actor: str) -> bool:
    """Expire or revoke a live lease (locked by the caller). The attempt goes STALE and
    is retried within the infra budget — or, when a cancel was pending, is finalised as
    that cancel (CANCELED, or TIMED_OUT for a job timeout)."""
    if not states.transition(states.LEASE, lease, to, why=why, actor=actor, only_from=LEASE_LIVE):
        return False
    attempt = lease.attempt
    attempt.refresh_from_db(fields=["state", "cancel_reason"])
    if attempt.state == AttemptState.CANCEL_REQUESTED:
        final_attempt_after_cancel(attempt, why=f"{why} (forced)", actor=actor)
    else:
        states.transition(
            states.ATTEMPT,
            attempt,
            AttemptState.STALE,
            why=why,
            actor=actor,
            only_from=ATTEMPT_LEASED,
            failure_class=FailureClass.INFRASTRUCTURE,
            failure_confidence=1.0,
            failure_detail=f"runner lost: {why}",
        )
    after_attempt_end(attempt)
    engine.resolve_attempt(attempt, actor=actor)
    return True


@transaction.atomic
def revoke(lease: Lease, *, actor: str, why: str = "revoked by an operator") -> bool:
    """Operator revocation: the runner's next message is answered LEASE_REVOKED."""
    locked = lock_lease(lease.pk)
    if locked is None or not end_lease(locked, LeaseState.REVOKED, why=why, actor=actor):
        return False
    record(
        "lease.revoke",
        actor=actor,
        run=locked.attempt.run,
        target=locked.lease_prefix,
        why=why,
        runner=locked.runner.name,
    )
    return True


def after_attempt_end(attempt: JobAttempt) -> None:
    """Once the attempt's end commits: finalise its live log into the artifact store."""
    pk = attempt.pk

    def _finalize() -> None:
        from apps.artifacts.tasks import finalize_log

        finalize_log.delay(pk)

    transaction.on_commit(_finalize)
