"""How a run moves forward once its plan exists: queue jobs whose needs are met, skip
jobs whose need failed, retry or resolve a job when an attempt ends, finalise the run.

Everything here runs inside the caller's transaction and changes state only through
apps/runs/states.py. Each function is idempotent: calling it twice changes nothing more.
"""

from django.db import connection, transaction
from django.db.models import Max

from apps.policies.effective import policy_for
from apps.runs import recipes, statements, states
from apps.runs.choices import (
    ATTEMPT_FAILED,
    ATTEMPT_HELD,
    JOB_TERMINAL,
    JOB_UNSUCCESSFUL,
    RUN_EXECUTING,
    AttemptState,
    FailureClass,
    JobState,
    RunState,
)
from apps.runs.models import Job, JobAttempt, Run
from lib.db import fetch_prepared
from lib.wakeup import notify_work

NEED_FAILED = "NEED_FAILED"


def need_failed(state: str, reason_code: str) -> bool:
    """Did this job finally fail (or was it skipped because one of its needs did)?"""
    return state in JOB_UNSUCCESSFUL or (state == JobState.SKIPPED and reason_code == NEED_FAILED)


def _broken_reason(failed: list[str], broken: int) -> str:
    """The outcome names the jobs that failed; jobs skipped because a need failed are
    only counted (they did not fail, they never ran)."""
    skipped = broken - len(failed)
    parts = [f"required job(s) failed: {', '.join(failed[:20])}"] if failed else []
    if len(failed) > 20:
        parts[0] += f" and {len(failed) - 20} more"
    if skipped:
        parts.append(f"{skipped} required job(s) skipped because a job they need failed")
    return "; ".join(parts)


def need_met(state: str, reason_code: str) -> bool:
    """Succeeded, or skipped by the planner (not affected by the diff: nothing to wait for)."""
    return state == JobState.SUCCEEDED or (state == JobState.SKIPPED and reason_code != NEED_FAILED)


def queue_attempt(
    job: Job, *, infra_retry: bool = False, reason: str = "", run: Run | None = None
) -> JobAttempt:
    """A new attempt (number = last + 1), published for dispatch."""
    last = job.attempts.aggregate(n=Max("attempt_number"))["n"] or 0
    attempt = JobAttempt.objects.create(
        job=job,
        run_id=job.run_id,
        attempt_number=last + 1,
        infra_retry=infra_retry,
        run_created_at=(run or job.run).created_at,
    )
    states.transition(
        states.ATTEMPT, attempt, AttemptState.QUEUED, why=reason or "queued", actor="system"
    )
    transaction.on_commit(notify_work)
    return attempt


def release_ready_jobs(run: Run) -> int:
    """PENDING jobs whose needs all succeeded are queued; those with a failed need are
    SKIPPED naming it. Repeats until nothing changes (a skip can cascade). Reads only the
    pending jobs and the jobs they need, so a big run's every attempt end stays cheap."""
    if run.state not in RUN_EXECUTING:
        return 0
    changed = 0
    while True:
        pending = list(
            Job.objects.filter(run_id=run.pk, state=JobState.PENDING).only(
                "id", "run_id", "name", "needs", "state"
            )
        )
        if not pending:
            return changed
        wanted = {n for job in pending for n in job.needs}
        known = {
            name: (state, code)
            for name, state, code in Job.objects.filter(run_id=run.pk, name__in=wanted).values_list(
                "name", "state", "reason_code"
            )
        }
        progressed = False
        for job in pending:
            needs = [(n, *known[n]) for n in job.needs if n in known]
            failed = [n for n, state, code in needs if need_failed(state, code)]
            if failed:
                names = ", ".join(failed)
                progressed |= states.transition(
                    states.JOB,
                    job,
                    JobState.SKIPPED,
                    why=f"need {names} did not succeed",
                    reason_code=NEED_FAILED,
                    reason=f"skipped because {names} did not succeed",
                    actor="system",
                )
            elif all(need_met(state, code) for _, state, code in needs):
                if states.transition(
                    states.JOB, job, JobState.QUEUED, why="needs met", actor="system"
                ):
                    queue_attempt(job, run=run)
                    progressed = True
        changed += progressed
        if not progressed:
            return changed


def resolve_attempt(attempt: JobAttempt, *, actor: str) -> None:
    """After an attempt ended: retry it (new attempt) or resolve its job, then advance
    the run. Infra failures spend the policy's infra budget; others the job's retries."""
    job, run = attempt.job, attempt.run  # the attempt's run: loaded with it, plan deferred
    if job.state in JOB_TERMINAL:
        advance_run(run, actor=actor, recheck=True)
        return
    state = attempt.state
    if state == AttemptState.SUCCEEDED:
        states.transition(
            states.JOB, job, JobState.SUCCEEDED, why="attempt succeeded", actor="system"
        )
        if attempt.attempt_number > 1:
            _mark_flaky_attempts(job)
    elif state in ATTEMPT_FAILED:
        run.refresh_from_db(fields=["state"])  # a cancelled or finished run retries nothing
        if run.state in RUN_EXECUTING and _may_retry(job, attempt, policy_for(run.repository)):
            infra = state == AttemptState.STALE or (
                attempt.failure_class == FailureClass.INFRASTRUCTURE
            )
            queue_attempt(
                job,
                run=run,
                infra_retry=infra,
                reason=f"retry after attempt {attempt.attempt_number} {state}",
            )
        else:
            final = JobState.TIMED_OUT if state == AttemptState.TIMED_OUT else JobState.FAILED
            states.transition(
                states.JOB,
                job,
                final,
                why=f"attempt {attempt.attempt_number} {state}",
                actor="system",
            )
    elif state == AttemptState.CANCELED:
        states.transition(
            states.JOB, job, JobState.CANCELED, why="attempt canceled", actor="system"
        )
    advance_run(run, actor=actor, recheck=True)


def _may_retry(job: Job, attempt: JobAttempt, policy) -> bool:
    """Infra failures (runner lost, infrastructure class) spend the policy's infra budget;
    tooling and flaky failures spend the job's retries; user failures never retry."""
    ended = list(
        job.attempts.filter(state__in=ATTEMPT_FAILED).values_list("state", "failure_class")
    )
    infra = sum(1 for s, c in ended if s == AttemptState.STALE or c == FailureClass.INFRASTRUCTURE)
    other = len(ended) - infra
    if attempt.state == AttemptState.STALE or attempt.failure_class == FailureClass.INFRASTRUCTURE:
        return infra <= policy.infra_retry_budget
    if attempt.failure_class in (FailureClass.TOOLING, FailureClass.FLAKY):
        return other <= job.retries
    return False


def _mark_flaky_attempts(job: Job) -> None:
    """Failed attempts of a job that then succeeded are re-labelled flaky."""
    JobAttempt.objects.filter(
        job=job, state__in=(AttemptState.FAILED, AttemptState.TIMED_OUT)
    ).exclude(failure_class=FailureClass.INFRASTRUCTURE).update(
        failure_class=FailureClass.FLAKY, failure_confidence=0.9
    )


def _advance_after_commit(run_id: int, actor: str) -> None:
    """advance_run once more in its own transaction after the caller's commits (robust:
    a failure there is logged, and the supervisor's advance_runs catches up)."""

    def again() -> None:
        with transaction.atomic():
            run = Run.objects.defer("plan", "recipe").filter(pk=run_id).first()
            if run is not None:
                advance_run(run, actor=actor, recheck=False)

    transaction.on_commit(again, robust=True)


def _open_job_states(run: Run) -> set[str]:
    return {
        state
        for (state,) in fetch_prepared(
            statements.OPEN_JOB_STATES, statements.open_job_states_params(run.pk)
        )
    }


def advance_run(run: Run, *, actor: str, recheck: bool = False) -> None:
    """Release dependents and finalise the run when nothing more can happen. Called at
    the end of every attempt, so its two reads are prepared statements. Where writers
    run concurrently (PostgreSQL), two jobs ending at once each see the other still open
    in their own transaction; so `recheck` (the callers that end a job or an attempt) looks
    again once the transaction commits, when it left jobs open, and the last of them to
    commit moves the run on. Planning, cancelling and the supervisor's safety net end
    nothing that another transaction could be ending too, and do not ask for it."""
    rows = fetch_prepared(statements.RUN_STATE, {"run": run.pk})
    if not rows:
        return
    run.state = rows[0][0]
    if run.state == RunState.CANCEL_REQUESTED:
        if not JobAttempt.objects.filter(run=run, state__in=ATTEMPT_HELD).exists():
            states.transition(
                states.RUN, run, RunState.CANCELED, why="all attempts stopped", actor=actor
            )
        return
    if run.state not in RUN_EXECUTING:
        return
    open_states = _open_job_states(run)
    if JobState.PENDING in open_states:
        release_ready_jobs(run)
        open_states = _open_job_states(run)
    if open_states:
        if recheck and connection.vendor == "postgresql":
            _advance_after_commit(run.pk, actor)
        return
    jobs = Job.objects.filter(run_id=run.pk)
    # A required job that did not succeed breaks the run, including one skipped because
    # its need failed (even an allow-failure need); planner-skipped jobs are not required.
    broken = [
        (state == JobState.SKIPPED, name)
        for name, state, code in jobs.filter(required=True, allow_failure=False).values_list(
            "name", "state", "reason_code"
        )
        if need_failed(state, code)
    ]
    if broken:
        reason = _broken_reason(sorted(n for skip, n in broken if not skip), len(broken))
        states.transition(states.RUN, run, RunState.FAILED, why=reason, actor=actor, reason=reason)
    else:
        if states.transition(
            states.RUN, run, RunState.SUCCESS, why="all required jobs succeeded", actor=actor
        ):
            run_id = run.pk
            transaction.on_commit(lambda: recipes.persist_recipe(run_id))
