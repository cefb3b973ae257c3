"""Request scope for logs, and the runner protocol's metrics, without touching its views.

Every request gets a fresh log context. For runner protocol messages (routes under
api/v1/internal/) the lease a message names is bound as its hash prefix together with
the run and job it belongs to, so every line the request writes carries them; after the
answer one structured line records the message, and the metrics count lease and
heartbeat latency and every 409 STALE_LEASE answer.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from lib import jsonsafe
from lib import logging as jlog
from lib.tokens import hash_token

log = logging.getLogger("deltaci.runner_protocol")
PROTOCOL_PREFIX = "api/v1/internal/"
TIMED = ("lease", "heartbeat")


def _protocol_endpoint(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    if match is None or not (match.route or "").startswith(PROTOCOL_PREFIX):
        return None
    return match.url_name or match.route[len(PROTOCOL_PREFIX) :]


def _lease_id_of(request: HttpRequest) -> str | None:
    """The lease a runner message names: the X-Delta-Lease header (log chunks) or the
    JSON body's lease_id. Bodies over the protocol's limit are left to the view."""
    header = request.META.get("HTTP_X_DELTA_LEASE")
    if header:
        return header
    if request.method != "POST" or "json" not in request.META.get("CONTENT_TYPE", ""):
        return None
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < size <= settings.DELTACI_MAX_BODY_BYTES:
        return None
    try:
        body = jsonsafe.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    lease_id = body.get("lease_id") if isinstance(body, dict) else None
    return lease_id if isinstance(lease_id, str) and 0 < len(lease_id) <= 200 else None


def _bind_lease(lease_id: str) -> None:
    # Only the hash prefix here, before authentication: the runner views bind run_id and
    # job_id once the lease is verified (apps/runners/leasing.py), with no extra query.
    jlog.bind(lease=hash_token(lease_id)[:12])


def _observe(endpoint: str, response: HttpResponse, seconds: float) -> None:
    from apps.ops import metrics

    if endpoint in TIMED:
        metrics.RUNNER_REQUEST_SECONDS.labels(endpoint, str(response.status_code)).observe(seconds)
    data = getattr(response, "data", None)
    if response.status_code != 409 or not isinstance(data, dict):
        return
    error = data.get("error")
    if isinstance(error, dict) and error.get("code") == "STALE_LEASE":
        reason = data.get("reason")
        reason = reason if reason in metrics.STALE_REASONS else "other"
        metrics.STALE_ANSWERS.labels(endpoint, reason).inc()


class OpsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with jlog.scope():
            started = time.perf_counter()
            response = self.get_response(request)
            endpoint = _protocol_endpoint(request)
            if endpoint is not None:
                seconds = time.perf_counter() - started
                _observe(endpoint, response, seconds)
                self._log(request, endpoint, response, seconds)
            return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        if _protocol_endpoint(request) is None:
            return None
        lease_id = _lease_id_of(request)
        if lease_id:
            _bind_lease(lease_id)
        return None

    @staticmethod
    def _log(request: HttpRequest, endpoint: str, response: HttpResponse, seconds: float) -> None:
        data = getattr(response, "data", None)
        fields = {"endpoint": endpoint, "status": response.status_code}
        if isinstance(data, dict):
            granted = data.get("type") == "LeaseGranted" and isinstance(data.get("lease_id"), str)
            if granted:
                jlog.bind(
                    lease=hash_token(data["lease_id"])[:12],
                    run_id=data.get("run_id"),
                    job_id=data.get("job_id"),
                )
            error = data.get("error")
            if isinstance(error, dict):
                fields["error"] = error.get("code")
                if data.get("reason"):
                    fields["reason"] = data.get("reason")
        runner = getattr(request, "user", None)  # a Runner once the view authenticated it
        if runner is not None and hasattr(runner, "capabilities"):
            fields["runner_id"] = runner.pk
        fields["duration_ms"] = round(seconds * 1000, 1)
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        log.log(level, "runner message", extra=fields)
