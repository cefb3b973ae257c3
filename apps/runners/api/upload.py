"""The filesystem store's upload endpoint: a signed, expiring URL for exactly one key
(what a presigned PUT is for S3), valid only while the attempt holds its lease. The
signature is the capability; nothing else writes."""

from django.core import signing
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.artifacts import storage
from apps.runners import uploads
from lib.api_errors import error_json


@csrf_exempt
@require_http_methods(["PUT"])
def upload_artifact(request, token: str):
    try:
        grant = storage.verify_upload_token(token)
    except signing.SignatureExpired:
        return error_json("FORBIDDEN", "upload URL expired")
    except signing.BadSignature:
        return error_json("FORBIDDEN", "invalid upload URL")
    limit = int(grant["s"])
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error_json("INVALID_REQUEST", "bad Content-Length")
    if declared > limit:
        return error_json("PAYLOAD_TOO_LARGE", f"upload exceeds the requested {limit} bytes")
    data = request.read(limit + 1)
    if len(data) > limit:
        return error_json("PAYLOAD_TOO_LARGE", f"upload exceeds the requested {limit} bytes")
    try:
        uploads.store_upload(grant["k"], data)
    except uploads.UploadRefused as exc:
        return error_json(exc.code, exc.message)
    return JsonResponse({"stored": True, "size": len(data)}, status=200)
