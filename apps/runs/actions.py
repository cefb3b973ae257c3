"""Every change to repositories and runs that starts work: add a repository, create a
run (idempotent on the trigger key, planning dispatched on commit), rerun. Ending runs
(cancel, supersede) is apps/runs/cancelling.py. Views, API, admin, commands and tasks
all call these."""

import uuid

from django.db import IntegrityError, transaction

from apps.audit.actions import record
from apps.policies.models import Policy
from apps.runs.choices import (
    JOB_UNSUCCESSFUL,
    RUN_TERMINAL,
    RunState,
    Trigger,
)
from apps.runs.models import Repository, Run
from apps.runs.tasks import plan_run
from lib import repourl
from lib.dispatch import dispatch_on_commit


class RunError(Exception):
    """A request about a run that cannot be honoured (clear message for the caller)."""


@transaction.atomic
def do_add_repository(
    name: str, url: str, *, actor: str, default_branch: str = "main", **extra
) -> Repository:
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
    actor: str,
    rerun_of: Run | None = None,
    rerun_scope: str = "",
) -> tuple[Run, bool]:
    """A run in CREATED with planning dispatched on commit, or the existing run of the
    same trigger key (duplicate deliveries create nothing). With the broker down the run
    is still created (reconcile_planning sends its planning later)."""
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


def do_rerun_run(
    run: Run, *, actor: str, failed_only: bool = False, idempotency_key: str = ""
) -> tuple[Run, bool]:
    """A new run of the same commit (`attempt` + 1, `rerun_of` set). Failed-only reruns
    keep just the jobs that did not succeed and the jobs that need them."""
    if run.state not in RUN_TERMINAL:
        raise RunError(f"run {run.pk} is {run.state}; only a finished run can be rerun")
    if (
        failed_only
        and not run.jobs.filter(state__in=JOB_UNSUCCESSFUL).exists()
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
