"""The lease rules: the one place that decides whether a lease is live, and that ends
execution rights (Complete, CancelAck, expiry, revocation, forced cancel).

A lease is a fencing token: every runner message names it, and only a live lease held by
the calling runner can change state; anything else is StaleLease and changes nothing.
Lease ids are 256-bit secrets stored only as SHA-256. Granting is apps/runners/dispatch.py,
renewing apps/runners/heartbeats.py; both follow the rules here.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.artifacts.models import Artifact
from apps.artifacts.tasks import finalize_log
from apps.audit.actions import record
from apps.runners import leasesql, statements
from apps.runners.models import Lease, Runner
from apps.runs import engine, states
from apps.runs.choices import (
    ATTEMPT_LEASED,
    LEASE_LIVE,
    AttemptState,
    CancelReason,
    FailureClass,
    LeaseState,
)
from apps.runs.failures import classify, log_tail
from apps.runs.models import JobAttempt
from lib.db import begin_write, fetch_prepared
from lib.dispatch import dispatch_on_commit
from lib.logging import bind
from lib.tokens import hash_token

log = logging.getLogger(__name__)


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


# --- lease-scoped messages -------------------------------------------------------------

_STALE_REASON: dict[str, str] = {  # by str: Lease.state reads as a plain string
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
    bind_scope(lease.attempt.run_id, lease.attempt.job_id)
    return lease


def bind_scope(run_id: int, job_id: int) -> None:
    """Log lines of this request carry the run and job of the (verified) lease; the
    request's log scope (apps/ops/middleware.py) ends with the request."""
    bind(run_id=run_id, job_id=job_id)


# --- liveness: the one definition ------------------------------------------------------
# A lease is live while its state is GRANTED or ACTIVE, its TTL has not passed, and, while
# GRANTED, its ack deadline has not passed. expiry_reason() is that rule in Python,
# live_now() and expired_by() the same rule as query filters, and the heartbeat's one
# statement (apps/runners/statements.RENEW) writes live_now() out in SQL;
# tests/supervisor/test_liveness.py checks that all of them agree on every combination.


def expiry_reason(lease: Lease, now: datetime) -> str | None:
    """Why a lease in a live state has run out at `now`, or None (also for ended ones)."""
    if lease.state not in LEASE_LIVE:
        return None
    if lease.state == LeaseState.GRANTED and lease.ack_deadline <= now:
        return "ack timeout"
    if lease.expires_at <= now:
        return "TTL passed"
    return None


def live_now(now: datetime) -> Q:
    """The leases that are live at `now`."""
    return Q(state=LeaseState.ACTIVE, expires_at__gt=now) | Q(
        state=LeaseState.GRANTED, expires_at__gt=now, ack_deadline__gt=now
    )


def expired_by(now: datetime) -> Q:
    """The leases in a live state that have run out at `now` (the supervisor's work)."""
    return Q(state=LeaseState.ACTIVE, expires_at__lte=now) | Q(state=LeaseState.GRANTED) & (
        Q(expires_at__lte=now) | Q(ack_deadline__lte=now)
    )


def count_live() -> int:
    """Leases in a live state, expired or not: what the global lease limit counts (one
    prepared statement, asked by every claim)."""
    return fetch_prepared(statements.COUNT_LIVE, statements.LIVE_STATES)[0][0]


def stale_reason(lease: Lease, now: datetime | None = None) -> str | None:
    """Why messages on this lease are refused, or None while it is live. A lease past its
    TTL (or its ack deadline) is refused at once; the supervisor records the expiry."""
    if lease.state not in LEASE_LIVE:
        return _STALE_REASON[lease.state]
    if expiry_reason(lease, now or timezone.now()):
        return "LEASE_EXPIRED"
    return None


def require_live(lease: Lease) -> None:
    reason = stale_reason(lease)
    if reason:
        raise StaleLease(reason)


def activate(lease: Lease, actor: str) -> None:
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
    activate(lease, f"runner:{runner.name}")
    return lease


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
    activate(lease, actor)
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
    if message.get("image"):
        fields["image_digest"] = message["image"]["digest"]
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
    activate(lease, actor)
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
    """Once the attempt's end commits: finalise its live log into the artifact store
    (reconcile_logs sends it again if the broker was down)."""
    dispatch_on_commit(finalize_log, attempt.pk)
