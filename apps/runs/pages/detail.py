"""Everything the run page shows, in a fixed number of queries: the run, its jobs laid out
as DAG stages, every attempt with its runner and artifacts, the plan's explanation, the
run's own timeline and the test results."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict, cast

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from django.utils import timezone

from apps.artifacts.models import Artifact, ArtifactType
from apps.runs import access
from apps.runs.choices import JOB_ACTIVE, RUN_ACTIVE, RUN_TERMINAL, JobState, RunState
from apps.runs.models import Job, JobAttempt, Run, StateEvent
from apps.runs.pages.dag import layout
from apps.runs.pages.facts import links, queue_time
from apps.runs.pages.testresults import summarize

MAX_CHANGED_PATHS_SHOWN = 200
_CANCELLABLE = tuple(s for s in RUN_ACTIVE if s != RunState.CANCEL_REQUESTED)
_FAILED_JOB = (JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELED)
_BROKEN_JOB = (JobState.FAILED, JobState.TIMED_OUT)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # the stubs' model-with-annotations type

    class _AttemptRow(TypedDict):
        """What an attempt's row in the job's table shows beside its columns."""

        runner_name: str
        artifact_list: list[Artifact]
        duration: timedelta | None

    ShownAttempt = WithAnnotations[JobAttempt, _AttemptRow]


def duration(start: datetime | None, end: datetime | None) -> timedelta | None:
    if start is None:
        return None
    return (end or timezone.now()) - start


@dataclass
class JobView:
    job: Job
    attempts: list["ShownAttempt"] = field(default_factory=list)
    stage: int = 0

    @property
    def last(self) -> "ShownAttempt | None":
        return self.attempts[-1] if self.attempts else None

    @property
    def duration(self) -> timedelta | None:
        return duration(self.job.started_at, self.job.finished_at)

    @property
    def queue_time(self) -> timedelta | None:
        return queue_time(self.attempts)

    @property
    def title(self) -> str:
        """The job's declared `name:` in ci.ai.yaml, when it has one."""
        return str(self.job.spec.get("title") or "")

    @property
    def runner(self) -> str:
        last = self.last
        return last.runner_name if last else ""


def _runner_name(attempt: JobAttempt) -> str:
    try:
        return attempt.lease.runner.name
    except ObjectDoesNotExist:
        return ""


def _shown(attempt: JobAttempt) -> "ShownAttempt":
    """The attempt with what its row shows; run_page() appends its artifacts."""
    shown = cast("ShownAttempt", attempt)  # the stubs cannot see attributes set on a row
    shown.runner_name = _runner_name(attempt)
    shown.artifact_list = []
    shown.duration = duration(attempt.started_at or attempt.leased_at, attempt.finished_at)
    return shown


def _stages(views: list[JobView]) -> list[list[JobView]]:
    """Jobs grouped by depth in the needs DAG (one past the deepest need). Relaxation
    with a cap on the depth, so a cycle or an unknown need can never loop."""
    names = {v.job.name for v in views}
    depth = dict.fromkeys(names, 0)
    cap = len(views)
    for _ in range(cap):
        changed = False
        for view in views:
            needs = [n for n in view.job.needs if n in names and n != view.job.name]
            d = min(cap, 1 + max((depth[n] for n in needs), default=-1))
            if d > depth[view.job.name]:
                depth[view.job.name] = d
                changed = True
        if not changed:
            break
    stages: dict[int, list[JobView]] = {}
    for view in views:
        view.stage = depth[view.job.name]
        stages.setdefault(view.stage, []).append(view)
    return [stages[k] for k in sorted(stages)]


def run_page(run: Run, user) -> dict:
    jobs = list(Job.objects.filter(run=run).order_by("position", "id"))
    views = {j.pk: JobView(job=j) for j in jobs}
    # The advisory AI analysis (apps.ai), when one exists, rides on the same query.
    attempts = JobAttempt.objects.filter(run=run).select_related("lease__runner", "ai_analysis")
    by_attempt: dict[int, ShownAttempt] = {}
    run_artifacts: list[tuple[Job, JobAttempt, Artifact]] = []
    for attempt in map(_shown, attempts.order_by("job_id", "attempt_number")):
        by_attempt[attempt.pk] = attempt
        views[attempt.job_id].attempts.append(attempt)
    artifacts = Artifact.objects.filter(
        attempt__run=run, recorded=True, deleted_at__isnull=True
    ).order_by("attempt_id", "name", "id")
    for art in artifacts:
        owner = by_attempt.get(art.attempt_id)
        if owner is None or art.artifact_type == ArtifactType.LOG:  # the log has its own link
            continue
        owner.artifact_list.append(art)
        run_artifacts.append((views[owner.job_id].job, owner, art))
    planned = [v for v in views.values() if v.job.spec or v.attempts]
    not_run = [v for v in views.values() if not (v.job.spec or v.attempts)]
    plan = run.plan or {}
    changed = list(plan.get("changed_paths") or [])
    states = {j.state for j in jobs}
    stages = _stages(planned)
    reruns = Run.objects.filter(rerun_of=run)
    return {
        "run": run,
        "run_url": reverse("run-detail", args=[run.pk]),  # once, not per attempt
        "duration": duration(run.started_at or run.created_at, run.finished_at),
        "stages": stages,
        "graph": layout(stages),
        "failed_jobs": [v for v in planned if v.job.state in _BROKEN_JOB],
        "skipped": not_run,
        "job_count": len(jobs),
        "active_jobs": sum(1 for j in jobs if j.state in JOB_ACTIVE),
        "plan": {
            "explain": plan.get("explain") or "",
            "source": plan.get("source") or "",
            "fallback_reason": plan.get("fallback_reason") or "",
            "changed_paths": changed[:MAX_CHANGED_PATHS_SHOWN],
            "changed_more": max(0, len(changed) - MAX_CHANGED_PATHS_SHOWN),
            "base": plan.get("base_sha") or "",  # what the planner diffed against
        },
        "commit": plan.get("commit") or {},
        "links": links(run, plan.get("base_sha") or run.base_sha),
        "artifacts": run_artifacts,
        "reruns": list(reruns.order_by("id").values_list("pk", flat=True)),
        "timeline": list(StateEvent.objects.filter(run=run, kind="run").order_by("created_at")),
        "tests": summarize(run),
        "can_cancel": run.state in _CANCELLABLE
        and access.can_act(user, run.repository, "cancel_run"),
        "can_rerun": run.state in RUN_TERMINAL
        and access.can_act(user, run.repository, "rerun_run"),
        "can_rerun_failed": run.state == RunState.FAILED or bool(states & set(_FAILED_JOB)),
    }
