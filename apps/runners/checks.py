"""Start-up check: PostgreSQL plans every hand-written statement (apps/runs/statements.py,
apps/runners/statements.py) before the server takes traffic, so a renamed column or a
migration not yet applied fails `manage.py migrate`/`check --database default` by name
instead of turning heartbeats into 500s. EXPLAIN parses and plans, it never executes."""

from collections.abc import Iterator
from typing import Any

from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

from apps.runners import statements as runner_statements
from apps.runs import statements as run_statements


def all_statements() -> Iterator[tuple[str, str, dict]]:
    yield from run_statements.samples()
    yield from runner_statements.samples()


def _migrations_pending(conn: Any) -> bool:
    executor = MigrationExecutor(conn)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


@register(Tags.database)
def statements_plan(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list:
    errors: list[Error] = []
    for alias in databases or ():
        conn = connections[alias]
        if conn.vendor != "postgresql" or _migrations_pending(conn):
            continue  # migrate runs this check first: the schema is not there yet
        for name, sql, params in all_statements():
            try:
                with conn.cursor() as cursor:
                    cursor.execute("EXPLAIN " + sql, params)
            except DatabaseError as exc:
                errors.append(
                    Error(
                        f"the hand-written statement {name} does not plan on {alias}: {exc}",
                        hint="a model changed without its statement, or migrations are pending",
                        id="deltaci.E101",
                    )
                )
    return errors
