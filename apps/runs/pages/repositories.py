"""The repositories page: per visible repository, the latest run of its default branch
and of each open pull request.

Delta CI keeps no pull-request table, so "open" means: a pull request with a run in the
last PR_WINDOW whose latest run was not cancelled by the pull request's `closed` event
(apps/vcs cancels with the actor "…:pull_request.closed"). A pull request closed after
its runs finished drops off the page once they are older than PR_WINDOW.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Exists, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Concat
from django.utils import timezone

from apps.runs import access
from apps.runs.models import Repository, Run, StateEvent

PR_WINDOW = timedelta(days=30)
MAX_PRS_SHOWN = 20
CLOSED_ACTOR_SUFFIX = "pull_request.closed"


@dataclass
class RepoRow:
    repository: Repository
    branch_run: Run | None = None
    pr_runs: list[Run] = field(default_factory=list)


def repository_rows(user) -> list[RepoRow]:
    """A fixed number of queries whatever the number of repositories, runs and PRs."""
    branch = Run.objects.filter(repository=OuterRef("pk")).filter(
        Q(ref=OuterRef("default_branch"))
        | Q(ref=Concat(Value("refs/heads/"), OuterRef("default_branch")))
    )
    repos = list(
        access.visible_repositories(user)
        .annotate(branch_run_id=Subquery(branch.order_by("-created_at", "-id").values("pk")[:1]))
        .order_by("name")
    )
    rows = {r.pk: RepoRow(repository=r) for r in repos}
    if not rows:
        return []
    latest_pr = (
        Run.objects.filter(
            repository_id__in=list(rows),
            pr_number__isnull=False,
            created_at__gte=timezone.now() - PR_WINDOW,
        )
        .values("repository_id", "pr_number")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
    )
    branch_run_of = {r.pk: r.branch_run_id for r in repos}
    wanted = {pk for pk in branch_run_of.values() if pk}
    closed = StateEvent.objects.filter(
        run=OuterRef("pk"), kind="run", actor__endswith=CLOSED_ACTOR_SUFFIX
    )
    runs = Run.objects.filter(Q(pk__in=wanted) | Q(pk__in=Subquery(latest_pr))).annotate(
        pr_closed=Exists(closed)
    )
    for run in runs.order_by("-pr_number", "-id"):
        row = rows[run.repository_id]
        run.repository = row.repository
        if run.pk in wanted and run.pk == branch_run_of[run.repository_id]:
            row.branch_run = run
        if run.pr_number is not None and not run.pr_closed and len(row.pr_runs) < MAX_PRS_SHOWN:
            row.pr_runs.append(run)
    return list(rows.values())
