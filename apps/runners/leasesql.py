"""Every lease-scoped message starts by loading its lease by hash, often with the
attempt, job, run, repository and policy behind it. Written out once here (a prepared
statement on PostgreSQL, lib/db.fetch_prepared) instead of compiled by the ORM on each
message: on this hot path the ORM's compiling and model building cost more than the
query. Columns come from the models' metadata; the big JSON columns nothing here reads
(a run's plan and recipe, a job's spec) stay deferred, loaded only if touched.
"""

from django.db import connection

from apps.policies.models import Policy
from apps.runners.models import Lease
from apps.runs.models import Job, JobAttempt, Repository, Run
from lib.db import fetch_prepared, models_from_row

# related name -> (model, alias, join, columns left out)
_JOINS = {
    "attempt": (JobAttempt, "a", 'JOIN {t} a ON a."id" = l."attempt_id"', ()),
    "attempt__job": (Job, "j", 'JOIN {t} j ON j."id" = a."job_id"', ("spec",)),
    "attempt__run": (Run, "r", 'JOIN {t} r ON r."id" = a."run_id"', ("plan", "recipe")),
    "attempt__run__repository": (
        Repository,
        "p",
        'JOIN {t} p ON p."id" = r."repository_id"',
        (),
    ),
    "attempt__run__repository__policy": (
        Policy,
        "pol",
        'LEFT JOIN {t} pol ON pol."repository_id" = p."id"',
        (),
    ),
}
_SQL: dict[tuple, tuple[str, list]] = {}


def _fields(model: type, left_out: tuple[str, ...]) -> list:
    return [f for f in model._meta.concrete_fields if f.name not in left_out]


def _statement(related: tuple[str, ...], lock: bool) -> tuple[str, list]:
    key = (related, lock, connection.vendor)
    if key not in _SQL:
        parts = [(Lease, "l", _fields(Lease, ()))]
        joins = []
        for name in related:
            model, alias, join, left_out = _JOINS[name]
            parts.append((model, alias, _fields(model, left_out)))
            joins.append(join.format(t=model._meta.db_table))
        cols = ", ".join(f'{alias}."{f.column}"' for _, alias, fields in parts for f in fields)
        sql = (
            f"SELECT {cols} FROM {Lease._meta.db_table} l {' '.join(joins)} "  # noqa: S608
            'WHERE l."lease_hash" = %(hash)s'
        )
        if lock and connection.features.has_select_for_update_of:
            sql += " FOR UPDATE OF l"
        layout = [(model, [f.attname for f in fields]) for model, _, fields in parts]
        _SQL[key] = (sql, layout)
    return _SQL[key]


def lease_by_hash(digest: str, related: tuple[str, ...], *, lock: bool) -> Lease | None:
    """The lease with that hash and the `related` chain cached on it (in the order of
    _JOINS, each one needing the one before), or None."""
    sql, layout = _statement(related, lock)
    rows = fetch_prepared(sql, {"hash": digest})
    if not rows:
        return None
    (lease, *rest), _ = models_from_row(layout, rows[0])
    chain = dict(zip(related, rest, strict=True))
    if "attempt" in chain:
        lease.attempt = attempt = chain["attempt"]
        if "attempt__job" in chain:
            attempt.job = chain["attempt__job"]
        if "attempt__run" in chain:
            attempt.run = run = chain["attempt__run"]
            if "attempt__job" in chain:
                attempt.job.run = run
            if "attempt__run__repository" in chain:
                run.repository = repo = chain["attempt__run__repository"]
                if "attempt__run__repository__policy" in chain:
                    Repository.policy.related.set_cached_value(
                        repo, chain["attempt__run__repository__policy"]
                    )
    return lease
