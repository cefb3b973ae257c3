"""The supervisor: every time limit of states.md, enforced as explicit transitions.

Each duty is a small function over a bounded batch that takes `now`, so tests inject
the clock and call them directly. Every item is handled in its own transaction with
compare-and-set transitions: two supervisors running at once cannot both act.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.actions import record
from apps.policies.effective import policy_for
from apps.runners.choices import LEASE_LIVE, LeaseState
from apps.runners.leasing import _after_attempt_end, final_attempt_after_cancel
from apps.runners.models import Lease
from apps.runs import engine, states
from apps.runs.choices import ATTEMPT_LEASED, AttemptState, CancelReason, FailureClass, RunState
from apps.runs.models import JobAttempt, Run

log = logging.getLogger(__name__)
BATCH = 200
PLANNING_TIMEOUT = timedelta(minutes=15)


def expire_leases(now=None) -> int:
    """Leases past their TTL, or not acknowledged in time: lease EXPIRED, attempt STALE
    (runner lost, infrastructure) and retried within the infra budget."""
    now = now or timezone.now()
    due = (
        Lease.objects.filter(state__in=LEASE_LIVE)
        .filter(Q(expires_at__lte=now) | Q(state=LeaseState.GRANTED, ack_deadline__lte=now))
        .values_list("pk", flat=True)[:BATCH]
    )
    done = 0
    for pk in list(due):
        with transaction.atomic():
            lease = Lease.objects.select_related(
                "attempt", "attempt__job", "attempt__run", "runner"
            ).get(pk=pk)
            why = (
                "ack timeout"
                if lease.state == LeaseState.GRANTED and lease.ack_deadline <= now
                else "TTL passed"
            )
            if not states.transition(
                states.LEASE, lease, LeaseState.EXPIRED, why=why, only_from=LEASE_LIVE
            ):
                continue
            done += 1
            attempt = lease.attempt
            record(
                "lease.expire",
                run=attempt.run,
                target=lease.lease_prefix,
                why=why,
                runner=lease.runner.name,
            )
            if attempt.state == AttemptState.CANCEL_REQUESTED:
                final_attempt_after_cancel(
                    attempt, why=f"lease expired during cancel ({why})", actor="supervisor"
                )
            else:
                states.transition(
                    states.ATTEMPT,
                    attempt,
                    AttemptState.STALE,
                    why=f"lease expired ({why})",
                    actor="supervisor",
                    failure_class=FailureClass.INFRASTRUCTURE,
                    failure_confidence=1.0,
                    failure_detail=f"runner lost: lease expired ({why})",
                )
            transaction.on_commit(lambda a=attempt.pk: _after_attempt_end(a))
            engine.resolve_attempt(attempt, actor="supervisor")
    return done


def enforce_job_timeouts(now=None) -> int:
    """Attempts running past max_runtime are asked to stop (reason TIMEOUT); they end
    TIMED_OUT on CancelAck or at the cancel deadline."""
    now = now or timezone.now()
    done = 0
    held = JobAttempt.objects.filter(
        state__in=ATTEMPT_LEASED, leased_at__isnull=False
    ).select_related("job", "run", "run__repository")
    for attempt in held.order_by("leased_at")[: BATCH * 5]:
        limit = int(
            attempt.job.spec.get("timeout_seconds")
            or policy_for(attempt.run.repository).job_timeout_seconds
        )
        if attempt.leased_at + timedelta(seconds=limit) > now:
            continue
        with transaction.atomic():
            if states.transition(
                states.ATTEMPT,
                attempt,
                AttemptState.CANCEL_REQUESTED,
                why=f"job timeout ({limit}s)",
                actor="supervisor",
                cancel_reason=CancelReason.TIMEOUT,
                cancel_requested_at=now,
            ):
                done += 1
                record(
                    "attempt.timeout", run=attempt.run, target=attempt.job.name, limit_seconds=limit
                )
    return done


def enforce_cancel_deadlines(now=None) -> int:
    """Attempts that did not acknowledge a cancel in time are forced: lease REVOKED."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DELTACI_CANCEL_DEADLINE_SECONDS)
    due = JobAttempt.objects.filter(
        state=AttemptState.CANCEL_REQUESTED, cancel_requested_at__lte=cutoff
    ).values_list("pk", flat=True)[:BATCH]
    done = 0
    for pk in list(due):
        with transaction.atomic():
            attempt = JobAttempt.objects.select_related("job", "run").get(pk=pk)
            lease = Lease.objects.filter(attempt=attempt).first()
            if lease and lease.state in LEASE_LIVE:
                lease.attempt = attempt
                states.transition(
                    states.LEASE,
                    lease,
                    LeaseState.REVOKED,
                    why="cancel deadline passed",
                    actor="supervisor",
                )
            if attempt.state != AttemptState.CANCEL_REQUESTED:
                continue
            final_attempt_after_cancel(
                attempt, why="cancel deadline passed (forced)", actor="supervisor"
            )
            done += 1
            record(
                "attempt.force_cancel",
                run=attempt.run,
                target=attempt.job.name,
                lease=lease.lease_prefix if lease else "",
                reason=attempt.cancel_reason,
            )
            transaction.on_commit(lambda a=attempt.pk: _after_attempt_end(a))
            engine.resolve_attempt(attempt, actor="supervisor")
    return done


def enforce_run_timeouts(now=None) -> int:
    from apps.runs.actions import stop_jobs

    now = now or timezone.now()
    done = 0
    for run in Run.objects.filter(state__in=(RunState.QUEUED, RunState.RUNNING)).select_related(
        "repository"
    )[: BATCH * 5]:
        limit = ((run.plan or {}).get("policies") or {}).get("max_runtime_seconds") or policy_for(
            run.repository
        ).run_timeout_seconds
        if run.created_at + timedelta(seconds=int(limit)) > now:
            continue
        with transaction.atomic():
            if states.transition(
                states.RUN,
                run,
                RunState.TIMEOUT,
                why=f"run timeout ({limit}s)",
                actor="supervisor",
                reason=f"the run exceeded its time limit of {limit}s",
            ):
                done += 1
                record("run.timeout", run=run, limit_seconds=int(limit))
                stop_jobs(run, cancel_reason=CancelReason.TIMEOUT, actor="supervisor")
    return done


def fail_stuck_planning(now=None) -> int:
    now = now or timezone.now()
    done = 0
    for run in Run.objects.filter(state=RunState.PLANNING, updated_at__lte=now - PLANNING_TIMEOUT)[
        :BATCH
    ]:
        with transaction.atomic():
            msg = f"planning did not finish within {int(PLANNING_TIMEOUT.total_seconds())}s"
            if states.transition(
                states.RUN,
                run,
                RunState.PLAN_FAILED,
                why="planning timeout",
                actor="supervisor",
                plan_error=msg,
            ):
                states.transition(
                    states.RUN,
                    run,
                    RunState.FAILED,
                    why="plan failed",
                    actor="supervisor",
                    reason=msg,
                )
                done += 1
    return done


def advance_runs() -> int:
    """Safety net: release and finalise runs whose progress a lost message left behind."""
    n = 0
    active = (RunState.QUEUED, RunState.RUNNING, RunState.CANCEL_REQUESTED)
    for run in Run.objects.filter(state__in=active).order_by("updated_at")[:BATCH]:
        with transaction.atomic():
            before = run.state
            engine.advance_run(run, actor="supervisor")
            n += run.state != before
    return n


def supervise_once(now=None) -> dict:
    now = now or timezone.now()
    return {
        "leases_expired": expire_leases(now),
        "job_timeouts": enforce_job_timeouts(now),
        "forced_cancels": enforce_cancel_deadlines(now),
        "run_timeouts": enforce_run_timeouts(now),
        "planning_failed": fail_stuck_planning(now),
        "runs_advanced": advance_runs(),
    }
