"""Heartbeats: the hottest message (every runner, every 20 s). A heartbeat renews its
lease's TTL (the one it was granted with), may report progress, and learns whether a
cancel is pending. The first one also acknowledges the lease and starts the attempt.

On PostgreSQL one prepared statement checks, renews and reads all that; the general
path (every database, first heartbeats, the precise reason a lease is not live) uses
the lease rules of apps/runners/leasing.py. No transaction or row lock is taken on the
hot path: the supervisor locks and re-checks a lease before expiring it, so a renewal
that lands first wins.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.runners import statements
from apps.runners.leasing import (
    StaleLease,
    activate,
    bind_scope,
    find_lease,
    lease_digest,
    live_now,
    require_live,
    stale_reason,
)
from apps.runners.models import Lease, Runner
from apps.runs import states
from apps.runs.choices import ATTEMPT_REPORTING, AttemptState, LeaseState
from apps.runs.models import JobAttempt
from lib.db import fetch_prepared


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
    bind_scope(run_id, job_id)
    steady = (
        lease_state == LeaseState.ACTIVE
        and attempt_state in ATTEMPT_REPORTING
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


def _renew_in_one_statement(runner: Runner, lease_id: str, progress: dict | None):
    """PostgreSQL: check and renew the lease, store the progress report and read the
    attempt's cancel state in one statement. None when the lease is not live for this
    runner (the general path then says why)."""
    now = timezone.now()
    params = statements.renew_params(now, lease_digest(lease_id), runner.pk, progress)
    rows = fetch_prepared(statements.RENEW, params)
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
    renewed = Lease.objects.filter(live_now(now), pk=lease.pk).update(
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
    """Acknowledge, start (and mark uploading) the attempt; the progress report rides in
    the same UPDATE as a transition when there is one."""
    attempt = lease.attempt
    activate(lease, actor)
    pending = dict(progress=progress) if progress and progress != attempt.progress else {}
    if attempt.state == AttemptState.STARTING and states.transition(
        states.ATTEMPT, attempt, AttemptState.RUNNING, why="first heartbeat", actor=actor, **pending
    ):
        pending = {}
    if (
        attempt.state == AttemptState.RUNNING
        and _uploading(progress)
        and states.transition(
            states.ATTEMPT, attempt, AttemptState.UPLOADING, why="uploading", actor=actor, **pending
        )
    ):
        pending = {}
    if pending:
        JobAttempt.objects.filter(pk=attempt.pk).update(**pending)
        attempt.progress = progress
