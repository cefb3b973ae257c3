"""Every hand-written SQL statement of the runner protocol's hot path, in one place: the
runner's token lookup, the claim, the lease lookup by hash, the heartbeat's renewal and
the live-lease count.

Why hand-written: on these paths compiling the ORM query and building models cost more
than PostgreSQL spends running it (bench/lease_throughput.py). Table and column names
come from the models' metadata (lib/sql.py), states are parameters, never literals, and
each statement's text is fixed so it runs as a prepared statement (lib/db.fetch_prepared).
`samples()` lists every statement with parameters of the right types: the start-up check
(apps/runners/checks.py) has PostgreSQL plan each one, and the tests check that every
column named exists and that each agrees with the ORM path it stands in for.
"""

import functools
import json
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.policies.models import ImageIsolation, Policy
from apps.runners.models import Lease, Runner
from apps.runs.choices import ATTEMPT_REPORTING, LEASE_LIVE, AttemptState, LeaseState
from apps.runs.models import Job, JobAttempt, Repository, Run
from lib.sql import col, in_list, table

# --- the runner behind a token (api/auth.py, every message) ----------------------------

RUNNER_FIELDS = [f.attname for f in Runner._meta.concrete_fields]
RUNNER_BY_HASH = (
    f"SELECT {', '.join(col(Runner, name) for name in RUNNER_FIELDS)} "  # noqa: S608
    f"FROM {table(Runner)} WHERE {col(Runner, 'token_hash')} = %(hash)s"
)
RUNNER_SEEN = (
    f"UPDATE {table(Runner)} SET {col(Runner, 'last_seen_at')} = %(now)s "  # noqa: S608
    f"WHERE {col(Runner, 'id')} = %(id)s"
)

# --- the claim (dispatch.py, PostgreSQL only; the ORM path is the reference) -----------

_WANTED: tuple[tuple[Any, str, tuple[str, ...] | None], ...] = (
    (JobAttempt, "a", ("id", "job_id", "run_id", "attempt_number", "state", "run_created_at")),
    (Job, "j", ("id", "run_id", "name", "state", "spec")),
    (Run, "r", ("id", "repository_id", "state", "ref", "commit_sha", "is_fork", "created_at")),
    (Repository, "p", ("id", "name", "url", "environment", "visibility", "github_full_name")),
    (Policy, "pol", None),  # all of it: the effective policy reads every field
)
# In the models' own field order, which Model.from_db() expects.
_CLAIM_FIELDS = tuple(
    (m, alias, tuple(f.attname for f in m._meta.concrete_fields if not names or f.attname in names))
    for m, alias, names in _WANTED
)
CLAIM_LAYOUT = tuple((m, names) for m, _, names in _CLAIM_FIELDS)
CLAIM_EXCLUSIONS = ("attempts", "repos", "runs")
_EXCLUDE = {
    "attempts": f"AND {col(JobAttempt, 'id', 'a')} <> ALL(%(attempts)s::bigint[])",
    "repos": f"AND {col(Run, 'repository', 'r')} <> ALL(%(repos)s::bigint[])",
    "runs": f"AND {col(JobAttempt, 'run', 'a')} <> ALL(%(runs)s::bigint[])",
    # A runner without containers: not the jobs whose image their policy requires
    # (apps/policies/images.py; the Python check after the lock stays the reference).
    "host_only": f"""AND (COALESCE({col(Job, "spec", "j")} ->> 'image', '') = ''
       OR COALESCE(NULLIF({col(Policy, "image_isolation", "pol")}, ''), %(isolation)s)
          <> %(required)s)""",
}


@functools.cache
def claim(exclude: tuple[str, ...]) -> str:
    """The oldest queued attempt a runner may take (its environment, its capabilities,
    nothing ruled out yet), locked `FOR UPDATE SKIP LOCKED`, with what the grant needs and
    the run's own max_concurrency last. One text per set of exclusions in use: without
    any (a claim's first round, the common case) PostgreSQL settles on a generic plan."""
    cols = ", ".join(col(m, name, alias) for m, alias, names in _CLAIM_FIELDS for name in names)
    excluded = "\n  ".join(_EXCLUDE[name] for name in exclude)
    spec, plan = col(Job, "spec", "j"), col(Run, "plan", "r")
    return f"""
SELECT {cols}, {plan} -> 'policies' ->> 'max_concurrency'
FROM {table(JobAttempt)} a
JOIN {table(Job)} j ON {col(Job, "id", "j")} = {col(JobAttempt, "job", "a")}
JOIN {table(Run)} r ON {col(Run, "id", "r")} = {col(JobAttempt, "run", "a")}
JOIN {table(Repository)} p ON {col(Repository, "id", "p")} = {col(Run, "repository", "r")}
LEFT JOIN {table(Policy)} pol ON {col(Policy, "repository", "pol")} = {col(Repository, "id", "p")}
WHERE {col(JobAttempt, "state", "a")} = %(queued)s
  AND {col(Repository, "environment", "p")} = %(environment)s
  AND ({spec} -> 'runs_on' IS NULL OR {spec} -> 'runs_on' <@ %(caps)s::jsonb)
  {excluded}
ORDER BY {col(JobAttempt, "run_created_at", "a")}, {col(JobAttempt, "id", "a")}
LIMIT 1
FOR UPDATE OF a SKIP LOCKED
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


def claim_params(
    environment: str, caps: list[str], ruled_out: dict[str, set[int]], isolation: str = ""
) -> dict:
    """`isolation`: the environment's default image_isolation, for a claim excluding
    `host_only`."""
    params: dict[str, Any] = {
        "queued": AttemptState.QUEUED,
        "environment": environment,
        "caps": json.dumps(sorted(caps)),
    }
    params.update((name, sorted(pks)) for name, pks in ruled_out.items() if pks)
    if isolation:
        params.update(isolation=isolation, required=ImageIsolation.REQUIRED)
    return params


# --- the lease lookup by hash (leasesql.py) --------------------------------------------

# related name -> (model, alias, join condition, columns left out)
_JOINS = {
    "attempt": (JobAttempt, "a", (JobAttempt, "id", "a", Lease, "attempt", "l"), ()),
    "attempt__job": (Job, "j", (Job, "id", "j", JobAttempt, "job", "a"), ("spec",)),
    "attempt__run": (Run, "r", (Run, "id", "r", JobAttempt, "run", "a"), ("plan", "recipe")),
    "attempt__run__repository": (
        Repository,
        "p",
        (Repository, "id", "p", Run, "repository", "r"),
        (),
    ),
    "attempt__run__repository__policy": (
        Policy,
        "pol",
        (Policy, "repository", "pol", Repository, "id", "p"),
        (),
    ),
}
LOOKUP_CHAINS = tuple(tuple(list(_JOINS)[:n]) for n in (0, 3, 5))


def _fields(model: Any, left_out: tuple[str, ...]) -> list:
    return [f for f in model._meta.concrete_fields if f.name not in left_out]


@functools.cache
def lease_lookup(related: tuple[str, ...], lock: bool, vendor: str) -> tuple[str, list]:
    """The lease with hash %(hash)s and the `related` chain in one row (the big JSON
    columns nothing reads stay deferred); its layout for lib/db.models_from_row."""
    parts: list[tuple[Any, str, list[Any]]] = [(Lease, "l", _fields(Lease, ()))]
    joins = []
    for name in related:
        model, alias, (m1, f1, a1, m2, f2, a2), left_out = _JOINS[name]
        parts.append((model, alias, _fields(model, left_out)))
        kind = "LEFT JOIN" if model is Policy else "JOIN"
        joins.append(f"{kind} {table(model)} {alias} ON {col(m1, f1, a1)} = {col(m2, f2, a2)}")
    cols = ", ".join(col(m, f.name, alias) for m, alias, fields in parts for f in fields)
    sql = (
        f"SELECT {cols} FROM {table(Lease)} l {' '.join(joins)} "  # noqa: S608
        f"WHERE {col(Lease, 'lease_hash', 'l')} = %(hash)s"
    )
    if lock and vendor == "postgresql":
        sql += " FOR UPDATE OF l"
    layout = [(model, [f.attname for f in fields]) for model, _, fields in parts]
    return sql, layout


# --- the heartbeat's renewal (heartbeats.py, PostgreSQL only) ---------------------------


def _renew() -> str:
    lease, attempt = (lambda n: col(Lease, n, "l")), (lambda n: col(JobAttempt, n, "a"))
    reporting, _ = in_list("reporting", ATTEMPT_REPORTING)
    expires, beat = lease("expires_at"), lease("last_heartbeat_at")
    bare = functools.partial(col, Lease)
    return f"""
WITH renewed AS (
  UPDATE {table(Lease)} AS l
  SET {bare("expires_at")} = %(now)s + ({expires} - COALESCE({beat}, {lease("granted_at")})),
      {bare("last_heartbeat_at")} = %(now)s
  FROM {table(JobAttempt)} AS a
  WHERE {lease("lease_hash")} = %(hash)s AND {lease("runner")} = %(runner)s
    AND {attempt("id")} = {lease("attempt")}
    AND {expires} > %(now)s
    AND ({lease("state")} = %(active)s
         OR ({lease("state")} = %(granted)s AND {lease("ack_deadline")} > %(now)s))
  RETURNING {lease("id")} AS lease_id, {lease("state")} AS lease_state,
    {expires} - {beat} AS ttl, {attempt("id")} AS attempt_id,
    {attempt("state")} AS attempt_state, {attempt("cancel_reason")},
    {attempt("cancel_requested_at")}, {attempt("run")}, {attempt("job")}
), progressed AS (
  UPDATE {table(JobAttempt)} SET {col(JobAttempt, "progress")} = %(progress)s::jsonb
  WHERE %(progress)s::jsonb IS NOT NULL AND {col(JobAttempt, "id")} = (
    SELECT attempt_id FROM renewed
    WHERE lease_state = %(active)s AND attempt_state IN {reporting}
  )
  RETURNING {col(JobAttempt, "id")}
)
SELECT lease_id, lease_state, ttl, attempt_id, attempt_state, {col(JobAttempt, "cancel_reason")},
  {col(JobAttempt, "cancel_requested_at")}, {col(JobAttempt, "run")},
  {col(JobAttempt, "job")}
FROM renewed
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


RENEW = _renew()
_RENEW_STATES = {
    "active": LeaseState.ACTIVE,
    "granted": LeaseState.GRANTED,
    **in_list("reporting", ATTEMPT_REPORTING)[1],
}


def renew_params(now: Any, digest: str, runner_pk: int, progress: dict | None) -> dict:
    return {
        "now": now,
        "hash": digest,
        "runner": runner_pk,
        "progress": json.dumps(progress) if progress else None,
        **_RENEW_STATES,
    }


# --- the live-lease count (leasing.count_live, every claim) ----------------------------

_LIVE_IN, LIVE_STATES = in_list("live", LEASE_LIVE)
COUNT_LIVE = f"SELECT COUNT(*) FROM {table(Lease)} WHERE {col(Lease, 'state')} IN {_LIVE_IN}"  # noqa: S608


def samples() -> Iterator[tuple[str, str, dict]]:
    """Every statement text this module makes, with parameters of the right types."""
    now = timezone.now()
    yield "runner_by_hash", RUNNER_BY_HASH, {"hash": "x"}
    yield "runner_seen", RUNNER_SEEN, {"now": now, "id": 0}
    for n in range(len(CLAIM_EXCLUSIONS) + 1):
        exclude = CLAIM_EXCLUSIONS[:n]
        ruled_out = {name: {0} for name in exclude}
        yield f"claim{exclude}", claim(exclude), claim_params("dev", [], ruled_out)
        host = (*exclude, "host_only")  # a runner without containers
        yield f"claim{host}", claim(host), claim_params("dev", [], ruled_out, "preferred")
    for related in LOOKUP_CHAINS:
        for lock in (False, True):
            sql, _ = lease_lookup(related, lock, connection.vendor)
            yield f"lease_lookup{related, lock}", sql, {"hash": "x"}
    yield "renew", RENEW, renew_params(now, "x", 0, {"percent": 1})
    yield "count_live", COUNT_LIVE, LIVE_STATES
