"""POST /api/v1/webhooks/github: size limit, signature (constant time, on the raw
bytes, before any parsing), then one action. Every refusal carries the contract's
error body."""

import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.audit.actions import record
from apps.vcs import webhooks
from apps.vcs.actions import do_handle_delivery
from lib.api_errors import error_json

log = logging.getLogger(__name__)


def _read_body(request, limit: int) -> bytes | None:
    """At most `limit` bytes, or None when the body is larger (whatever it declared)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
def github_webhook(request):
    if request.method != "POST":
        return error_json("INVALID_REQUEST", "use POST", status=405)
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:  # fail closed: an unsigned delivery is never accepted
        log.error("GitHub webhook refused: GITHUB_WEBHOOK_SECRET is not set")
        return error_json("UNAVAILABLE", "webhooks are not configured on this server", status=503)
    limit = settings.GITHUB_MAX_WEBHOOK_BYTES
    body = _read_body(request, limit)
    if body is None:
        return error_json("PAYLOAD_TOO_LARGE", f"body exceeds {limit} bytes", {"limit": limit})
    try:
        webhooks.verify_signature(secret, body, request.headers.get("X-Hub-Signature-256"))
    except webhooks.BadSignature as exc:
        record("auth.failed", actor="github-webhook", target="github", why=str(exc))
        return error_json("UNAUTHORIZED", f"bad webhook signature: {exc}")
    event = request.headers.get("X-GitHub-Event", "").strip()
    delivery = request.headers.get("X-GitHub-Delivery", "").strip()[:100]
    if not event or len(event) > 50:
        return error_json("INVALID_REQUEST", "missing X-GitHub-Event header")
    try:
        payload = webhooks.decode(body, request.content_type or "")
        result = do_handle_delivery(event, delivery, payload)
    except webhooks.BadPayload as exc:
        return error_json("INVALID_REQUEST", f"malformed {event} payload: {exc}")
    log.info("GitHub %s delivery %s: %s", event, delivery, result.detail, extra={"event": event})
    return JsonResponse(result.body(), status=result.status)
