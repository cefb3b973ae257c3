"""Liveness and readiness for load balancers and Kubernetes probes."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return type(exc).__name__


def _broker_ok() -> str | None:
    url = settings.CELERY_BROKER_URL
    if not url or url.startswith("filesystem://") or url.startswith("memory://"):
        return None
    try:
        from deltaci.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return type(exc).__name__


def readyz(request):
    failed = {
        name: err for name, err in (("database", _database_ok()), ("broker", _broker_ok())) if err
    }
    if failed:
        return JsonResponse({"status": "unavailable", "failed": failed}, status=503)
    return JsonResponse({"status": "ok"})
