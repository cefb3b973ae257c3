"""`manage.py ops_probe`: exit 0 when the database and the broker answer, 1 otherwise —
the same readiness as /readyz, for processes without an HTTP port (Compose health checks
and Kubernetes exec probes of the Celery worker and beat)."""

import json

from django.core.management.base import BaseCommand, CommandError

from deltaci.health import broker_error, database_error


class Command(BaseCommand):
    help = "Exit 0 when the database and the broker are reachable (like /readyz)."

    def handle(self, *args, **opts):
        checks = {"database": database_error(), "broker": broker_error()}
        failed = {name: err for name, err in checks.items() if err}
        if failed:
            raise CommandError(json.dumps({"status": "unavailable", "failed": failed}))
        self.stdout.write(json.dumps({"status": "ok"}))
