"""The planning step of a run: sync the mirror, pick the base, call the pure planner,
persist the plan and its jobs. Git work happens outside any transaction; the plan is
persisted in one."""

import logging
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction

from apps.policies.effective import EffectivePolicy, policy_for
from apps.runs import engine, planlease, states, trust
from apps.runs.cancelling import cancel_superseded
from apps.runs.choices import JobState, RunState, Trigger
from apps.runs.models import Job, Recipe, Repository, Run
from apps.vcs.auth import clone_token_for, refresh_runner_clone_token
from lib import gitmirror
from lib.wakeup import notify_work
from planner import PlanError, PlannerPolicy, plan_repository

log = logging.getLogger(__name__)
ACTOR = "system"  # what the planning task writes into the events it causes


def planner_policy(policy: EffectivePolicy) -> PlannerPolicy:
    return PlannerPolicy(
        allowed_images=policy.allowed_images,
        required_jobs=policy.required_jobs,
        planning_mode=policy.planning_mode,
        default_timeout_seconds=policy.job_timeout_seconds,
        default_retries=policy.job_retries,
        max_jobs=settings.DELTACI_MAX_JOBS_PER_PLAN,
        max_config_bytes=settings.DELTACI_MAX_CONFIG_BYTES,
        caching_enabled=policy.caching_enabled,
    )


def sync_mirror(repo: Repository, *, refs: list[str] | None = None) -> Path:
    """The repository's bare mirror, fetched now (with the GitHub App's token for private
    GitHub repositories). The one place the control plane fetches: planning and
    `manage.py trigger_run`; never inside a web request."""
    return gitmirror.sync_mirror(
        settings.DELTACI_MIRROR_DIR, repo.name, repo.url, token=clone_token_for(repo), refs=refs
    )


def choose_base(run: Run, mirror) -> tuple[str | None, str | None]:
    """(base sha, why the diff is unavailable) following planning.md's inputs."""
    if run.trigger == Trigger.PUSH:
        if not run.base_sha or run.base_sha == gitmirror.NULL_SHA:
            return None, "first push of a branch: no previous commit to diff against"
        if not gitmirror.has_commit(mirror, run.base_sha):
            return None, f"base {run.base_sha[:12]} is not in the repository (force push?)"
        return run.base_sha, None
    if run.trigger == Trigger.PULL_REQUEST:
        if not run.base_sha or not gitmirror.has_commit(mirror, run.base_sha):
            return None, "the pull request's base commit is not available"
        base = gitmirror.merge_base(mirror, run.base_sha, run.commit_sha)
        return (base, None) if base else (None, "no merge-base between the PR's base and head")
    if run.base_sha:  # a manual run given an explicit base
        if not gitmirror.has_commit(mirror, run.base_sha):
            return None, f"base {run.base_sha[:12]} is not in the repository"
        return run.base_sha, None
    return last_success_base(run.repository, run.ref, run.commit_sha, mirror, exclude=run.pk)


def last_success_base(
    repository, ref: str, head_sha: str, mirror, *, exclude: int | None = None
) -> tuple[str | None, str | None]:
    """A manual run's base: the commit of the ref's last successful run (another
    commit), as (base sha, why the diff is unavailable). ``manage.py plan`` uses it too,
    so its preview diffs against what the server would."""
    successes = Run.objects.filter(repository=repository, ref=ref, state=RunState.SUCCESS)
    if exclude is not None:
        successes = successes.exclude(pk=exclude)
    previous = (
        successes.exclude(commit_sha=head_sha)
        .order_by("-created_at")
        .values_list("commit_sha", flat=True)
        .first()
    )
    if not previous:
        return None, f"no previous successful run of {ref}"
    if not gitmirror.has_commit(mirror, previous):
        return None, f"previous successful commit {previous[:12]} is not in the repository"
    return previous, None


def latest_recipe(repository) -> dict | None:
    """The newest recipe: the planner uses it only if its fingerprint still matches."""
    latest = Recipe.objects.filter(repository=repository).order_by("-created_at", "-id").first()
    return latest.recipe if latest else None


def do_plan_run(run_id: int, token: str = "") -> None:
    """Plan a CREATED run, or a PLANNING run the supervisor handed to `token` after its
    planner was lost (apps/runs/planlease.py); anything else is left alone."""
    run = Run.objects.select_related("repository", "rerun_of").get(pk=run_id)
    mine = planlease.claim(run, token)
    if mine is None:
        return
    with planlease.held(run.pk, mine):
        _plan(run)


def _plan(run: Run) -> None:
    repo = run.repository
    policy = policy_for(repo)
    try:
        if run.rerun_scope == "failed" and run.rerun_of and run.rerun_of.plan:
            plan, recipe = failed_only_plan(run.rerun_of), None
        else:
            plan, recipe = _plan_from_repository(run, policy)
    except PlanError as exc:
        do_fail_planning(run, str(exc), actor=ACTOR)
        return
    except gitmirror.GitError as exc:
        do_fail_planning(run, f"could not read the repository: {exc}", actor=ACTOR)
        return
    except Exception:
        log.exception("planner crashed", extra={"run_id": run.pk})
        do_fail_planning(run, "internal planner error (see the control plane's logs)", actor=ACTOR)
        return
    try:
        persist_plan(run, plan, recipe=recipe, policy=policy)
    except DatabaseError:  # rolled back: the run must not stay PLANNING
        log.exception("could not store the plan", extra={"run_id": run.pk})
        do_fail_planning(
            run, "could not store the plan (see the control plane's logs)", actor=ACTOR
        )


def _plan_from_repository(run: Run, policy: EffectivePolicy) -> tuple[dict, dict | None]:
    repo = run.repository
    mirror = sync_mirror(repo, refs=[run.ref] if run.ref.startswith("refs/pull/") else [])
    if not run.commit_sha:  # a run asked for by ref alone: resolved here, never in a request
        run.commit_sha = gitmirror.resolve(mirror, run.ref)
        Run.objects.filter(pk=run.pk).update(commit_sha=run.commit_sha)
    gitmirror.fetch_commit(mirror, run.commit_sha, token=clone_token_for(repo))
    refresh_runner_clone_token(repo)  # before any job exists: a lease only reads it
    trust.mark_if_untrusted(run, mirror)  # before any job exists
    base, unavailable = choose_base(run, mirror)
    plan = plan_repository(
        str(mirror),
        run.commit_sha,
        base,
        planner_policy(policy),
        recipe=latest_recipe(repo),
        diff_unavailable_reason=unavailable,
    )
    data = plan.to_dict()
    data["commit"] = gitmirror.commit_summary(mirror, run.commit_sha)  # for the run page
    return data, plan.recipe if plan.source in ("discovery", "fallback") else None


def failed_only_plan(previous: Run) -> dict:
    """The previous plan narrowed to the jobs that did not succeed and their dependents;
    needs on jobs that succeeded are dropped (they are satisfied)."""
    if previous.plan is None:
        raise PlanError(f"run {previous.pk} has no plan to rerun")
    plan = dict(previous.plan)
    states_by_name = dict(previous.jobs.values_list("name", "state"))
    keep = {n for n, s in states_by_name.items() if s not in (JobState.SUCCEEDED, JobState.SKIPPED)}
    did_not_succeed = set(keep)
    jobs = [j for j in plan.get("jobs", [])]
    grew = True
    while grew:
        grew = False
        for j in jobs:
            if j["name"] not in keep and any(n in keep for n in j.get("needs", [])):
                keep.add(j["name"])
                grew = True
    new_jobs = []
    for j in jobs:
        if j["name"] in keep:
            j = {**j, "needs": [n for n in j.get("needs", []) if n in keep]}
            j["reason_code"], j["reason"] = (
                "RERUN_FAILED",
                f"rerun of run {previous.pk}: did not succeed there",
            )
            new_jobs.append(j)
    skipped = [
        {
            "name": j["name"],
            "reason_code": "SUCCEEDED_BEFORE",
            "reason": f"succeeded in run {previous.pk}",
        }
        for j in jobs
        if j["name"] not in keep
    ]
    again = sum(1 for j in new_jobs if j["name"] in did_not_succeed)
    explain = (
        f"Failed-only rerun of run {previous.pk}: {len(new_jobs)} job(s) run again "
        f"({again} that did not succeed there, {len(new_jobs) - again} that need them); "
        f"{len(skipped)} that succeeded there are not rerun."
    )
    plan.update(jobs=new_jobs, skipped=skipped, explain=explain)
    return plan


def do_fail_planning(run: Run, message: str, *, actor: str, why: str = "planning failed") -> bool:
    """PLANNING -> PLAN_FAILED -> FAILED, keeping `message` as the planning error and the
    run's reason. The one way a plan fails: the planning task and the supervisor's
    planning timeout both call it. False when the run was no longer planning."""
    with transaction.atomic():
        if not states.transition(
            states.RUN, run, RunState.PLAN_FAILED, why=why, actor=actor, plan_error=message[:20000]
        ):
            return False
        states.transition(
            states.RUN, run, RunState.FAILED, why="plan failed", actor=actor, reason=message[:2000]
        )
        return True


_PROJECT_WIDTH = Job._meta.get_field("project").max_length  # a label only: cut to fit


@transaction.atomic
def persist_plan(run: Run, plan: dict, *, recipe: dict | None, policy: EffectivePolicy) -> None:
    """Jobs (skipped ones too, with their reason), the plan, then queue what is ready."""
    run = Run.objects.select_for_update().select_related("repository").get(pk=run.pk)
    if run.state != RunState.PLANNING:
        engine.advance_run(run, actor="system")  # cancelled while planning: finalise
        return
    rows = []
    for pos, j in enumerate(plan.get("jobs", [])):
        pol = j.get("policy", {})
        rows.append(
            Job(
                run=run,
                name=j["name"],
                position=pos,
                project=j.get("project", "")[:_PROJECT_WIDTH],
                ecosystem=j.get("ecosystem", ""),
                needs=list(j.get("needs", [])),
                required=bool(j.get("required", True)),
                allow_failure=bool(j.get("allow_failure", False)),
                retries=int(j.get("retries", pol.get("retries", policy.job_retries))),
                spec=j,
                state=JobState.PENDING,
                reason_code=j.get("reason_code", ""),
                reason=j.get("reason", ""),
                triggered_by=list(j.get("triggered_by", [])),
            )
        )
    offset = len(rows)
    for pos, s in enumerate(plan.get("skipped", [])):
        rows.append(
            Job(
                run=run,
                name=s["name"],
                position=offset + pos,
                state=JobState.SKIPPED,
                required=False,
                reason_code=s.get("reason_code", ""),
                reason=s.get("reason", ""),
                spec={},
                project=s.get("project", "")[:_PROJECT_WIDTH],
            )
        )
    Job.objects.bulk_create(rows)
    states.transition(
        states.RUN,
        run,
        RunState.QUEUED,
        why=f"planned {offset} job(s)",
        plan=plan,
        recipe=recipe,
        actor="system",
    )
    engine.advance_run(run, actor="system")
    supersede = plan.get("policies", {}).get("cancel_superseded", policy.cancel_superseded)
    if supersede and run.trigger in (Trigger.PUSH, Trigger.PULL_REQUEST):
        cancel_superseded(run, actor=ACTOR)
    transaction.on_commit(notify_work)
