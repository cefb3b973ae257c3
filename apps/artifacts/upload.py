"""The filesystem store's upload endpoint: a signed, expiring URL for exactly one key
(what a presigned PUT is for S3), valid only while the attempt holds its lease. The
signature is the capability; nothing else writes."""

from django.core import signing
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.artifacts import storage
from apps.runners import uploads
from lib.api_errors import CODE_STATUS, error_body


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


@csrf_exempt
@require_http_methods(["PUT"])
def upload_artifact(request, token: str):
    try:
        grant = storage.verify_upload_token(token)
    except signing.SignatureExpired:
        return _error("FORBIDDEN", "upload URL expired", 403)
    except signing.BadSignature:
        return _error("FORBIDDEN", "invalid upload URL", 403)
    limit = int(grant["s"])
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error("INVALID_REQUEST", "bad Content-Length", 400)
    if declared > limit:
        return _error("PAYLOAD_TOO_LARGE", f"upload exceeds the requested {limit} bytes", 413)
    data = request.read(limit + 1)
    if len(data) > limit:
        return _error("PAYLOAD_TOO_LARGE", f"upload exceeds the requested {limit} bytes", 413)
    try:
        uploads.store_upload(grant["k"], data)
    except uploads.UploadRefused as exc:
        return _error(exc.code, exc.message, CODE_STATUS[exc.code])
    return JsonResponse({"stored": True, "size": len(data)}, status=200)
