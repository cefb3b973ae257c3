"""The supervisor: every time limit of states.md, enforced as explicit transitions.

Each duty is a small function over a bounded batch that takes `now`, so tests inject
the clock and call them directly. Every item is handled in its own short transaction
that locks the row and re-checks the limit against it, so a heartbeat or a Complete that
lands first wins, and two supervisors running at once cannot both act. Every expiry and
forced action writes an audit event.
"""

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.audit.actions import record
from apps.policies.effective import EffectivePolicy, effective_policy
from apps.policies.models import Policy
from apps.runners import leasing
from apps.runners.jobspec import max_runtime_seconds
from apps.runners.models import Lease
from apps.runs import engine, planlease, states
from apps.runs.cancelling import do_supersede_run, stop_jobs
from apps.runs.choices import (
    ATTEMPT_ACTIVE,
    ATTEMPT_LEASED,
    LEASE_LIVE,
    RUN_EXECUTING,
    AttemptState,
    CancelReason,
    LeaseState,
    RunState,
    Trigger,
)
from apps.runs.models import JobAttempt, Run, StateEvent
from apps.runs.planning import do_fail_planning
from apps.runs.tasks import plan_run
from lib import wakeup
from lib.db import write_transaction
from lib.dispatch import dispatch_on_commit

log = logging.getLogger(__name__)
BATCH = 200  # items acted on per duty and pass
SCAN_PAGES = 20  # pages of BATCH rows examined per pass by the timeout scans
PLANNING_TIMEOUT = timedelta(minutes=15)


class _Policies:
    """Effective policies per repository for one pass: one query for all of them."""

    def __init__(self) -> None:
        self._cache: dict[int, EffectivePolicy] = {}

    def get(self, repository_id: int) -> EffectivePolicy:
        if repository_id not in self._cache:
            row = Policy.objects.filter(repository_id=repository_id).first()
            self._cache[repository_id] = effective_policy(row)
        return self._cache[repository_id]


def _pages(qs, fields: tuple[str, ...], order: str) -> Iterator[tuple]:
    """Rows of `qs` in keyset pages of BATCH, ordered by (order, id), at most SCAN_PAGES."""
    after = None
    for _ in range(SCAN_PAGES):
        page = qs
        if after is not None:
            page = page.filter(
                Q(**{f"{order}__gt": after[0]}) | Q(**{order: after[0], "id__gt": after[1]})
            )
        rows = list(page.order_by(order, "id").values_list(order, "id", *fields)[:BATCH])
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1][:2]


def expire_leases(now: datetime | None = None) -> int:
    """Leases past their TTL, or not acknowledged in time: lease EXPIRED, attempt STALE
    (runner lost, infrastructure) and retried within the infra budget."""
    now = now or timezone.now()
    due = list(
        Lease.objects.filter(leasing.expired_by(now))
        .order_by("expires_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    done = 0
    for pk in due:
        with write_transaction():
            lease = leasing.lock_lease(pk)
            if lease is None:
                continue
            why = leasing.expiry_reason(lease, now)
            if not why or not leasing.end_lease(
                lease, LeaseState.EXPIRED, why=f"lease expired ({why})", actor="supervisor"
            ):
                continue
            done += 1
            record(
                "lease.expire",
                run=lease.attempt.run,
                target=lease.lease_prefix,
                why=why,
                runner=lease.runner.name,
            )
    return done


def enforce_job_timeouts(now: datetime | None = None) -> int:
    """Attempts running past max_runtime_seconds are asked to stop (reason TIMEOUT); they
    end TIMED_OUT on CancelAck or at the cancel deadline."""
    now = now or timezone.now()
    policies = _Policies()
    held = JobAttempt.objects.filter(state__in=ATTEMPT_LEASED, leased_at__isnull=False)
    due = []
    for leased_at, pk, timeout, repo_id in _pages(
        held, ("job__spec__timeout_seconds", "run__repository_id"), "leased_at"
    ):
        limit = max_runtime_seconds({"timeout_seconds": timeout}, policies.get(repo_id))
        if leased_at + timedelta(seconds=limit) <= now:
            due.append((pk, limit))
        if len(due) >= BATCH:
            break
    done = 0
    for pk, limit in due:
        with write_transaction():
            attempt = JobAttempt.objects.select_related("job", "run", "run__repository").get(pk=pk)
            if not states.transition(
                states.ATTEMPT,
                attempt,
                AttemptState.CANCEL_REQUESTED,
                why=f"job timeout ({limit}s)",
                actor="supervisor",
                only_from=ATTEMPT_LEASED,
                cancel_reason=CancelReason.TIMEOUT,
                cancel_requested_at=now,
            ):
                continue
            done += 1
            record("attempt.timeout", run=attempt.run, target=attempt.job.name, limit_seconds=limit)
            transaction.on_commit(wakeup.notify_cancel)
    return done


def enforce_cancel_deadlines(now: datetime | None = None) -> int:
    """Attempts that did not acknowledge a cancel in time are forced: attempt CANCELED
    (TIMED_OUT for a job timeout), lease REVOKED."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DELTACI_CANCEL_DEADLINE_SECONDS)
    due = list(
        JobAttempt.objects.filter(
            state=AttemptState.CANCEL_REQUESTED, cancel_requested_at__lte=cutoff
        ).values_list("pk", flat=True)[:BATCH]
    )
    done = 0
    for pk in due:
        with write_transaction():
            lease_pk = Lease.objects.filter(attempt_id=pk).values_list("pk", flat=True).first()
            lease = leasing.lock_lease(lease_pk) if lease_pk else None
            if lease is not None and lease.state in LEASE_LIVE:
                forced = leasing.end_lease(
                    lease, LeaseState.REVOKED, why="cancel deadline passed", actor="supervisor"
                )
                attempt = lease.attempt
            else:  # the lease already ended: finish the cancel it left behind
                attempt = JobAttempt.objects.select_related("job", "run").get(pk=pk)
                forced = leasing.final_attempt_after_cancel(
                    attempt, why="cancel deadline passed (forced)", actor="supervisor"
                )
                if forced:
                    leasing.after_attempt_end(attempt)
                    engine.resolve_attempt(attempt, actor="supervisor")
            if not forced:
                continue
            done += 1
            record(
                "attempt.force_cancel",
                run=attempt.run,
                target=attempt.job.name,
                lease=lease.lease_prefix if lease else "",
                reason=attempt.cancel_reason,
            )
    return done


def enforce_run_timeouts(now: datetime | None = None) -> int:
    """Runs past their time limit end TIMEOUT; their active attempts are asked to stop."""
    now = now or timezone.now()
    policies = _Policies()
    active = Run.objects.filter(state__in=RUN_EXECUTING)
    due = []
    for created_at, pk, own, repo_id in _pages(
        active, ("plan__policies__max_runtime_seconds", "repository_id"), "created_at"
    ):
        limit = _positive(own) or policies.get(repo_id).run_timeout_seconds
        if created_at + timedelta(seconds=limit) <= now:
            due.append((pk, limit))
        if len(due) >= BATCH:
            break
    done = 0
    for pk, limit in due:
        with write_transaction():
            run = Run.objects.select_related("repository").get(pk=pk)
            if not states.transition(
                states.RUN,
                run,
                RunState.TIMEOUT,
                why=f"run timeout ({limit}s)",
                actor="supervisor",
                reason=f"the run exceeded its time limit of {limit}s",
            ):
                continue
            done += 1
            record("run.timeout", run=run, limit_seconds=limit)
            stop_jobs(run, cancel_reason=CancelReason.TIMEOUT, actor="supervisor")
    return done


def _positive(value) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def fail_stuck_planning(now: datetime | None = None) -> int:
    """Runs that entered PLANNING longer ago than the planning timeout fail."""
    now = now or timezone.now()
    entered_long_ago = StateEvent.objects.filter(
        kind="run",
        object_id=OuterRef("pk"),
        to_state=RunState.PLANNING,
        created_at__lte=now - PLANNING_TIMEOUT,
    )

    done = 0
    for run in Run.objects.filter(Exists(entered_long_ago), state=RunState.PLANNING)[:BATCH]:
        msg = f"planning did not finish within {int(PLANNING_TIMEOUT.total_seconds())}s"
        with write_transaction():
            if not do_fail_planning(run, msg, actor="supervisor", why="planning timeout"):
                continue
            record(
                "run.planning_timeout", run=run, limit_seconds=int(PLANNING_TIMEOUT.total_seconds())
            )
            done += 1
    return done


def replan_lost_planning(now: datetime | None = None) -> int:
    """Runs whose planner stopped renewing its planning lease (its worker died) are
    planned again by a new task; after MAX_PLANNING_ATTEMPTS lost planners the run
    fails, so a repository that kills its planner cannot loop forever."""
    now = now or timezone.now()
    done = 0
    for pk, token, attempts in planlease.lost(now, BATCH):
        with write_transaction():
            if attempts >= planlease.MAX_PLANNING_ATTEMPTS:
                run = Run.objects.select_for_update().get(pk=pk)
                if run.planning_token != token or not do_fail_planning(
                    run,
                    f"planning was interrupted {attempts} times (its worker was lost)",
                    why="planning lost",
                    actor="supervisor",
                ):
                    continue
                record("run.planning_abandoned", actor="supervisor", run=run, attempts=attempts)
            else:
                fresh = planlease.hand_over(pk, token, now)
                if fresh is None:
                    continue
                run = Run.objects.select_related("repository").get(pk=pk)
                record("run.planning_redispatch", actor="supervisor", run=run, attempts=attempts)
                dispatch_on_commit(plan_run, pk, fresh)
            done += 1
    return done


def supersede_runs() -> int:
    """Safety net for cancel_superseded (planning applies it when it persists a newer
    push or pull-request run's plan): an older active run of the same repository and ref
    is cancelled as SUPERSEDED, unless the newer plan or the policy says not to."""

    def newer_than(**run):
        return Run.objects.filter(trigger__in=(Trigger.PUSH, Trigger.PULL_REQUEST), **run).exclude(
            state__in=(RunState.CREATED, RunState.PLANNING, RunState.PLAN_FAILED)
        )

    newer = newer_than(
        repository_id=OuterRef("repository_id"),
        ref=OuterRef("ref"),
        created_at__gt=OuterRef("created_at"),
    )
    older = Run.objects.filter(Exists(newer), state__in=RUN_EXECUTING)
    policies = _Policies()
    done = 0
    for run in older.select_related("repository").order_by("id")[:BATCH]:
        wanted = (
            newer_than(repository_id=run.repository_id, ref=run.ref, created_at__gt=run.created_at)
            .order_by("-created_at")
            .values_list("plan__policies__cancel_superseded", flat=True)
            .first()
        )
        if wanted is None:
            wanted = policies.get(run.repository_id).cancel_superseded
        if wanted and do_supersede_run(run, actor="supervisor"):
            done += 1
    return done


def advance_runs() -> int:
    """Safety net: a run that is active but has no active attempt cannot move by itself
    (nothing will end); release its ready jobs or finalise it."""
    n = 0
    in_flight = JobAttempt.objects.filter(run=OuterRef("pk"), state__in=ATTEMPT_ACTIVE)
    stuck = (
        Run.objects.filter(state__in=(RunState.QUEUED, RunState.RUNNING, RunState.CANCEL_REQUESTED))
        .exclude(Exists(in_flight))
        .order_by("id")[:BATCH]
    )
    for run in stuck:
        with write_transaction():
            before = run.state
            engine.advance_run(run, actor="supervisor")
            n += run.state != before
    return n


def supervise_once(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    return {
        "leases_expired": expire_leases(now),
        "job_timeouts": enforce_job_timeouts(now),
        "forced_cancels": enforce_cancel_deadlines(now),
        "run_timeouts": enforce_run_timeouts(now),
        "planning_failed": fail_stuck_planning(now),
        "planning_replanned": replan_lost_planning(now),
        "runs_superseded": supersede_runs(),
        "runs_advanced": advance_runs(),
    }
