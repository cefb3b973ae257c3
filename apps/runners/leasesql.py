"""Every lease-scoped message starts by loading its lease by hash, often with the
attempt, job, run, repository and policy behind it, in one prepared statement
(apps/runners/statements.py) instead of a query the ORM compiles on each message: on
this hot path compiling and model building cost more than the query."""

from django.db import connection

from apps.runners import statements
from apps.runners.models import Lease
from apps.runs.models import Repository
from lib.db import fetch_prepared, models_from_row


def lease_by_hash(digest: str, related: tuple[str, ...], *, lock: bool) -> Lease | None:
    """The lease with that hash and the `related` chain cached on it (in the order of
    _JOINS, each one needing the one before), or None."""
    sql, layout = statements.lease_lookup(related, lock, connection.vendor)
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
