"""Every change to repositories and runs: create (idempotent on the trigger key), cancel
(two-phase), rerun. Views, API, admin, commands and tasks all call these."""

import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.actions import record
from apps.ops.dispatch import dispatch_on_commit
from apps.runs import engine, states
from apps.runs.choices import (
    ATTEMPT_LEASED,
    JOB_TERMINAL,
    RUN_ACTIVE,
    AttemptState,
    CancelReason,
    JobState,
    RunState,
    Trigger,
)
from apps.runs.models import Job, JobAttempt, Repository, Run
from lib import repourl
from lib.db import begin_write


class RunError(Exception):
    """A request about a run that cannot be honoured (clear message for the caller)."""


@transaction.atomic
def do_add_repository(
    name: str, url: str, *, default_branch: str = "main", actor: str = "system", **extra
) -> Repository:
    from apps.policies.models import Policy

    try:
        repourl.check(url)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    repo = Repository.objects.create(name=name, url=url, default_branch=default_branch, **extra)
    Policy.objects.create(repository=repo)
    record("repository.add", actor=actor, repository=repo, target=name, url=url)
    return repo


def do_create_run(
    repository: Repository,
    *,
    trigger: str,
    ref: str,
    commit_sha: str,
    event_key: str | None = None,
    base_sha: str = "",
    pr_number: int | None = None,
    is_fork: bool = False,
    untrusted_reason: str = "",
    actor: str = "system",
    rerun_of: Run | None = None,
    rerun_scope: str = "",
) -> tuple[Run, bool]:
    """A run in CREATED with planning dispatched on commit, or the existing run of the
    same trigger key (duplicate deliveries create nothing). With the broker down the run
    is still created (reconcile_planning sends its planning later)."""
    from apps.runs.tasks import plan_run

    key = event_key or f"{trigger}:{uuid.uuid4()}"
    existing = Run.objects.filter(repository=repository, event_key=key).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            run = Run.objects.create(
                repository=repository,
                trigger=trigger,
                event_key=key,
                ref=ref,
                commit_sha=commit_sha,
                base_sha=base_sha,
                pr_number=pr_number,
                is_fork=is_fork,
                untrusted_reason=untrusted_reason,
                started_by=actor,
                rerun_of=rerun_of,
                rerun_scope=rerun_scope,
                attempt=(rerun_of.attempt + 1) if rerun_of else 1,
            )
            record("run.create", actor=actor, run=run, target=ref, trigger=trigger, sha=commit_sha)
            dispatch_on_commit(plan_run, run.pk)
    except IntegrityError:
        return Run.objects.get(repository=repository, event_key=key), False
    return run, True


@transaction.atomic
def do_cancel_run(
    run: Run, *, actor: str = "system", cancel_reason: str = CancelReason.RUN_CANCELED
) -> bool:
    """Two-phase cancel: jobs not yet leased end at once, leased attempts are asked to
    stop (the runner sees it on its next heartbeat), and the run is CANCELED when the
    last one acknowledges or passes its cancel deadline. Idempotent."""
    begin_write()
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.state == RunState.CANCEL_REQUESTED:
        return True
    if not states.transition(
        states.RUN,
        run,
        RunState.CANCEL_REQUESTED,
        why=cancel_reason,
        actor=actor,
        cancel_reason=cancel_reason,
    ):
        return False
    record("run.cancel", actor=actor, run=run, reason=cancel_reason)
    stop_jobs(run, cancel_reason=cancel_reason, actor=actor)
    engine.advance_run(run, actor=actor)
    return True


def stop_jobs(run: Run, *, cancel_reason: str, actor: str = "system") -> int:
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
        from apps.runners.wakeup import notify_cancel

        transaction.on_commit(notify_cancel)
    return asked


def cancel_superseded(run: Run, *, actor: str = "system") -> list[int]:
    """Older active runs of the same repository and ref are cancelled as SUPERSEDED."""
    older = Run.objects.filter(
        repository_id=run.repository_id,
        ref=run.ref,
        state__in=RUN_ACTIVE,
        created_at__lte=run.created_at,
    ).exclude(pk=run.pk)
    done = []
    for other in older:
        if do_cancel_run(other, actor=actor, cancel_reason=CancelReason.SUPERSEDED):
            done.append(other.pk)
    return done


def do_rerun_run(
    run: Run, *, failed_only: bool = False, actor: str = "system", idempotency_key: str = ""
) -> tuple[Run, bool]:
    """A new run of the same commit (`attempt` + 1, `rerun_of` set). Failed-only reruns
    keep just the jobs that did not succeed and the jobs that need them."""
    if run.state not in (RunState.SUCCESS, RunState.FAILED, RunState.CANCELED, RunState.TIMEOUT):
        raise RunError(f"run {run.pk} is {run.state}; only a finished run can be rerun")
    if (
        failed_only
        and not run.jobs.filter(
            state__in=(JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELED)
        ).exists()
        and run.state != RunState.FAILED
    ):
        raise RunError(f"run {run.pk} has no failed job to rerun")
    mode = "failed" if failed_only else "all"
    key = f"rerun:{run.pk}:{mode}:{idempotency_key or uuid.uuid4()}"
    with transaction.atomic():
        new, created = do_create_run(
            run.repository,
            trigger=Trigger.RERUN,
            ref=run.ref,
            commit_sha=run.commit_sha,
            base_sha=run.base_sha,
            pr_number=run.pr_number,
            is_fork=run.is_fork,  # a rerun keeps the run's trust (see apps/runs/trust.py)
            untrusted_reason=run.untrusted_reason,
            event_key=key,
            actor=actor,
            rerun_of=run,
            rerun_scope=mode,
        )
        if created:
            record("run.rerun", actor=actor, run=new, rerun_of=run.pk, mode=mode)
    return new, created
