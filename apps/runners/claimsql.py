"""PostgreSQL's claim, run: the statement (apps/runners/statements.py) finds and locks the
oldest queued attempt a runner may take and reads what the grant needs in one go; here
its row becomes the attempt with its job, run, repository and policy cached on it.
dispatch.py uses this on PostgreSQL only; the ORM path serves every database and is the
reference this must match (tests/protocol/test_statements.py)."""

from typing import TYPE_CHECKING, TypedDict

from apps.policies.effective import default_image_isolation
from apps.policies.images import CONTAINER_CAPABILITY
from apps.runners import statements
from apps.runs.models import JobAttempt, Repository
from lib.db import fetch_prepared, models_from_row

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # the stubs' model-with-annotations type

    class GrantData(TypedDict):
        """Read with a claimed attempt beside its columns, here and in dispatch's ORM
        path: the run's own max_concurrency as text, None if the plan sets none."""

        run_limit: str | None

    ClaimedAttempt = WithAnnotations[JobAttempt, GrantData]


def lock_next(
    environment: str,
    caps: list[str],
    attempts: set[int],
    repos: set[int],
    runs: set[int],
    host_only: bool = False,
) -> "ClaimedAttempt | None":
    """The locked attempt with its job, run, repository and policy cached on it, and
    `run_limit` (the run's own max_concurrency, as text); None if there is none.
    `host_only`: not the jobs whose image the policy requires (a runner without
    containers that already met one; the first round's query, the hot path, stays plain)."""
    sets = {"attempts": attempts, "repos": repos, "runs": runs}
    exclude = tuple(name for name, pks in sets.items() if pks)
    isolation = ""
    if host_only and CONTAINER_CAPABILITY not in caps:
        exclude += ("host_only",)
        isolation = default_image_isolation(environment)
    params = statements.claim_params(environment, caps, sets, isolation)
    rows = fetch_prepared(statements.claim(exclude), params)
    if not rows:
        return None
    (attempt, job, run, repo, policy), values = models_from_row(statements.CLAIM_LAYOUT, rows[0])
    run.repository = repo
    job.run = run
    attempt.job = job
    attempt.run = run
    Repository.policy.related.set_cached_value(repo, policy)
    attempt.run_limit = values[0]
    return attempt
