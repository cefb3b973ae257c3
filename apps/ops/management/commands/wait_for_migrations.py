"""`manage.py wait_for_migrations [--timeout S]`: wait until the database schema is at
least what this code's migrations describe, then exit 0; exit 1 after the timeout.

New web, worker and beat pods run it first (a Kubernetes initContainer), so during an
upgrade they start only once the one-shot migration Job has finished, whatever order
kubectl applied things in; the old pods keep serving meanwhile. A database that is not
reachable yet counts as not migrated. A schema newer than the code (a rolled-back image)
passes: migrations are written to stay compatible with the previous release's code."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections, connection
from django.db.migrations.executor import MigrationExecutor


def pending_migrations() -> list[str]:
    """`app.migration` names this code has and the database has not applied, in order."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


class Command(BaseCommand):
    help = "Wait until every migration of this code is applied (exit 1 after --timeout)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between checks")

    def handle(self, *args, timeout: float, interval: float, **opts):
        if not 0 <= timeout <= 86400 or not 0.1 <= interval <= 60:
            raise CommandError("--timeout must be 0..86400 and --interval 0.1..60 seconds")
        deadline = time.monotonic() + timeout
        while True:
            try:
                pending = pending_migrations()
            except DatabaseError as exc:
                pending = [f"(database unavailable: {type(exc).__name__})"]
            if not pending:
                self.stdout.write("schema is current")
                return
            if time.monotonic() >= deadline:
                shown = ", ".join(pending[:5]) + (" …" if len(pending) > 5 else "")
                raise CommandError(f"{len(pending)} migration(s) not applied: {shown}")
            close_old_connections()
            time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
