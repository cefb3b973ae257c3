"""Liveness and readiness for load balancers, Compose health checks and Kubernetes probes.

/healthz says the process serves requests and touches nothing else, so a database outage
never makes an orchestrator restart every web process. /readyz says whether this process
can do useful work: the database answers and the broker accepts a connection. Each check
is bounded (about two seconds at worst) so a blackholed dependency cannot hang a probe,
and the answer names what failed but never how (no hostnames, no credentials).
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from deltaci.version import VERSION

BROKER_TIMEOUT_SECONDS = 1.0  # connect and answer: two round trips at most, ~2 s total
_LOCAL_TRANSPORTS = ("", "filesystem", "memory")


@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok", "version": VERSION})


def database_error() -> str | None:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return type(exc).__name__


def broker_error(url: str | None = None) -> str | None:
    """None when the broker accepts a connection and answers, else the error's class."""
    url = settings.CELERY_BROKER_URL if url is None else url
    scheme = urlsplit(url).scheme if url else ""
    if scheme in _LOCAL_TRANSPORTS:
        return None  # eager tasks or a local folder: nothing to reach
    try:
        if scheme in ("redis", "rediss", "unix"):
            import redis

            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
                socket_timeout=BROKER_TIMEOUT_SECONDS,
                retry_on_timeout=False,
            )
            try:
                client.ping()
            finally:
                client.close()
            return None
        from kombu import Connection

        with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return type(exc).__name__


@never_cache
@require_safe
def readyz(request):
    checks = {"database": database_error(), "broker": broker_error()}
    failed = {name: err for name, err in checks.items() if err}
    if failed:
        return JsonResponse({"status": "unavailable", "failed": failed}, status=503)
    return JsonResponse({"status": "ok", "checks": dict.fromkeys(checks, "ok")})
