"""PostgreSQL's claim query, written out: find the oldest queued attempt a runner may
take (its environment, its capabilities, nothing ruled out yet), lock it with
`FOR UPDATE SKIP LOCKED`, and read what the grant needs, in one statement.

The ORM builds the same query, but compiling it and building five related models costs
several times what PostgreSQL spends running it, and the lease request is the hot path
(bench/lease_throughput.py). Column lists come from the models' metadata; fields not
listed stay deferred (loaded on access). dispatch.py uses this on PostgreSQL only; the
ORM path serves every database and is the reference this must match.
"""

import functools
import json

from apps.policies.effective import default_image_isolation
from apps.policies.images import CONTAINER_CAPABILITY
from apps.policies.models import Policy
from apps.runs.models import Job, JobAttempt, Repository, Run
from lib.db import fetch_prepared, models_from_row

_WANTED: tuple[tuple[type, str, tuple[str, ...] | None], ...] = (
    (JobAttempt, "a", ("id", "job_id", "run_id", "attempt_number", "state", "run_created_at")),
    (Job, "j", ("id", "run_id", "name", "state", "spec")),
    (Run, "r", ("id", "repository_id", "state", "ref", "commit_sha", "is_fork", "created_at")),
    (Repository, "p", ("id", "name", "url", "environment", "visibility", "github_full_name")),
    (Policy, "pol", None),  # all of it: the effective policy reads every field
)
# In the models' own field order, which Model.from_db() expects.
_FIELDS = tuple(
    (m, alias, tuple(f.attname for f in m._meta.concrete_fields if not names or f.attname in names))
    for m, alias, names in _WANTED
)


_LAYOUT = tuple((m, names) for m, _, names in _FIELDS)


def _column(model: type, alias: str, attname: str) -> str:
    field = next(f for f in model._meta.concrete_fields if f.attname == attname)
    return f'{alias}."{field.column}"'


_EXCLUDE = {
    "attempts": 'AND a."id" <> ALL(%(attempts)s::bigint[])',
    "repos": 'AND r."repository_id" <> ALL(%(repos)s::bigint[])',
    "runs": 'AND a."run_id" <> ALL(%(runs)s::bigint[])',
    # A runner without containers: not the jobs whose image their policy requires
    # (apps/policies/images.py; the Python check after the lock stays the reference).
    "host_only": """AND (COALESCE(j."spec" ->> 'image', '') = ''
       OR COALESCE(NULLIF(pol."image_isolation", ''), %(isolation)s) <> 'required')""",
}


@functools.cache
def _sql(exclude: tuple[str, ...]) -> str:
    """One statement per set of exclusions in use: without any (a claim's first round,
    the common case) PostgreSQL settles on a good generic plan and stops re-planning."""
    cols = ", ".join(_column(m, alias, name) for m, alias, names in _FIELDS for name in names)
    excluded = "\n  ".join(_EXCLUDE[name] for name in exclude)
    return f"""
SELECT {cols}, r."plan" -> 'policies' ->> 'max_concurrency'
FROM {JobAttempt._meta.db_table} a
JOIN {Job._meta.db_table} j ON j."id" = a."job_id"
JOIN {Run._meta.db_table} r ON r."id" = a."run_id"
JOIN {Repository._meta.db_table} p ON p."id" = r."repository_id"
LEFT JOIN {Policy._meta.db_table} pol ON pol."repository_id" = p."id"
WHERE a."state" = 'QUEUED' AND p."environment" = %(environment)s
  AND (j."spec" -> 'runs_on' IS NULL OR j."spec" -> 'runs_on' <@ %(caps)s::jsonb)
  {excluded}
ORDER BY a."run_created_at", a."id"
LIMIT 1
FOR UPDATE OF a SKIP LOCKED
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


def lock_next(
    environment: str,
    caps: list[str],
    attempts: set[int],
    repos: set[int],
    runs: set[int],
    host_only: bool = False,
) -> JobAttempt | None:
    """The locked attempt with its job, run, repository and policy cached on it, and
    `run_limit` (the run's own max_concurrency, as text); None if there is none.
    `host_only`: not the jobs whose image the policy requires (a runner without
    containers that already met one)."""
    params = {"environment": environment, "caps": json.dumps(sorted(caps))}
    sets = {"attempts": attempts, "repos": repos, "runs": runs}
    exclude = tuple(name for name, pks in sets.items() if pks)
    params.update((name, sorted(sets[name])) for name in exclude)
    if host_only and CONTAINER_CAPABILITY not in caps:
        exclude += ("host_only",)
        params["isolation"] = default_image_isolation(environment)
    rows = fetch_prepared(_sql(exclude), params)
    if not rows:
        return None
    (attempt, job, run, repo, policy), values = models_from_row(_LAYOUT, rows[0])
    run.repository = repo
    job.run = run
    attempt.job = job
    attempt.run = run
    Repository.policy.related.set_cached_value(repo, policy)
    attempt.run_limit = values[0]
    return attempt
