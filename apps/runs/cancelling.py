"""Ending runs: the two-phase cancel, and superseding older runs of a ref. Its own
module below apps/runs/actions.py so that planning, which supersedes when it stores a
newer plan, depends on it without depending on the module that dispatches planning."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.audit.actions import record
from apps.runs import engine, states
from apps.runs.choices import (
    ATTEMPT_LEASED,
    JOB_TERMINAL,
    RUN_ACTIVE,
    AttemptState,
    CancelReason,
    JobState,
    RunState,
)
from apps.runs.models import Job, JobAttempt, Run
from lib.db import begin_write
from lib.wakeup import notify_cancel


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel request found. True when the run is being cancelled, by this request
    or an earlier one; `state` is the run's state afterwards."""

    accepted: bool
    state: str

    def __bool__(self) -> bool:
        return self.accepted

    @property
    def settled(self) -> bool:
        """Nothing is left to cancel: accepted, or the run had already ended CANCELED
        (a repeated request). Anything else ended first and cannot be cancelled."""
        return self.accepted or self.state == RunState.CANCELED


@transaction.atomic
def do_cancel_run(
    run: Run, *, actor: str, cancel_reason: str = CancelReason.RUN_CANCELED
) -> CancelOutcome:
    """Two-phase cancel: jobs not yet leased end at once, leased attempts are asked to
    stop (the runner sees it on its next heartbeat), and the run is CANCELED when the
    last one acknowledges or passes its cancel deadline. Idempotent."""
    begin_write()
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.state == RunState.CANCEL_REQUESTED:
        return CancelOutcome(True, run.state)
    if not states.transition(
        states.RUN,
        run,
        RunState.CANCEL_REQUESTED,
        why=cancel_reason,
        actor=actor,
        cancel_reason=cancel_reason,
    ):
        run.refresh_from_db(fields=["state"])
        return CancelOutcome(False, run.state)
    record("run.cancel", actor=actor, run=run, reason=cancel_reason)
    stop_jobs(run, cancel_reason=cancel_reason, actor=actor)
    engine.advance_run(run, actor=actor)
    return CancelOutcome(True, run.state)


def stop_jobs(run: Run, *, cancel_reason: str, actor: str) -> int:
    """Cancel every unfinished job of a run; returns how many leased attempts were asked
    to stop. Shared by cancel, supersede and run timeout."""
    now = timezone.now()
    asked = 0
    for attempt in JobAttempt.objects.filter(
        run=run, state__in=(AttemptState.CREATED, AttemptState.QUEUED)
    ):
        states.transition(
            states.ATTEMPT,
            attempt,
            AttemptState.CANCELED,
            why=cancel_reason,
            actor=actor,
            cancel_reason=cancel_reason,
        )
    for attempt in JobAttempt.objects.filter(run=run, state__in=ATTEMPT_LEASED):
        asked += states.transition(
            states.ATTEMPT,
            attempt,
            AttemptState.CANCEL_REQUESTED,
            why=cancel_reason,
            actor=actor,
            cancel_reason=cancel_reason,
            cancel_requested_at=now,
        )
    for job in Job.objects.filter(run=run).exclude(state__in=JOB_TERMINAL):
        held = JobAttempt.objects.filter(job=job, state=AttemptState.CANCEL_REQUESTED).exists()
        if not held:
            states.transition(states.JOB, job, JobState.CANCELED, why=cancel_reason, actor=actor)
    if asked:
        transaction.on_commit(notify_cancel)
    return asked


def cancel_superseded(run: Run, *, actor: str) -> list[int]:
    """Older active runs of the same repository and ref are cancelled as SUPERSEDED."""
    older = Run.objects.filter(
        repository_id=run.repository_id,
        ref=run.ref,
        state__in=RUN_ACTIVE,
        created_at__lte=run.created_at,
    ).exclude(pk=run.pk)
    return [other.pk for other in older if do_supersede_run(other, actor=actor)]


def do_supersede_run(run: Run, *, actor: str) -> bool:
    """A newer run of the same ref makes this one pointless: cancel it as SUPERSEDED."""
    return bool(do_cancel_run(run, actor=actor, cancel_reason=CancelReason.SUPERSEDED))
