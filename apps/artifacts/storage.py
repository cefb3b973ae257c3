"""The one interface to the artifact store: local files (signed, expiring upload URLs
served by the control plane) or S3-compatible (presigned PUT for exactly one key)."""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.urls import reverse
from django.utils import timezone

UPLOAD_TTL = timedelta(minutes=15)
URI_SCHEME = "artifact:"
_SALT = "deltaci.artifact-upload"


def store():
    return storages["artifacts"]


def attempt_prefix(attempt) -> str:
    return f"runs/{attempt.run_id}/jobs/{attempt.job_id}/attempts/{attempt.attempt_number}/"


def uri_for(key: str) -> str:
    return URI_SCHEME + key


def key_from_uri(uri: str) -> str | None:
    if not isinstance(uri, str) or not uri.startswith(URI_SCHEME):
        return None
    key = uri[len(URI_SCHEME) :]
    if ".." in key.split("/") or key.startswith("/"):
        return None
    return key


def upload_instructions(key: str, *, size: int, content_type: str) -> dict:
    """A presigned S3 PUT cannot be withdrawn when its attempt ends, so it is write-once
    (`If-None-Match: *`, signed): an object that exists is never replaced. The local
    store's URL is checked against the attempt's lease on every use (runners/uploads)."""
    expires = timezone.now() + UPLOAD_TTL
    headers = {"Content-Type": content_type}
    if settings.ARTIFACT_STORAGE == "s3":
        s3 = store()
        url = s3.connection.meta.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": s3.bucket_name,
                "Key": key,
                "ContentType": content_type,
                "IfNoneMatch": "*",
            },
            ExpiresIn=int(UPLOAD_TTL.total_seconds()),
            HttpMethod="PUT",
        )
        headers["If-None-Match"] = "*"
    else:
        token = signing.dumps({"k": key, "s": size, "t": content_type}, salt=_SALT, compress=True)
        url = settings.DELTACI_PUBLIC_URL + reverse("artifact-upload", args=[token])
    return {
        "method": "PUT",
        "url": url,
        "headers": headers,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def verify_upload_token(token: str) -> dict:
    """The key, size and type a local upload URL was signed for (raises BadSignature)."""
    return signing.loads(token, salt=_SALT, max_age=UPLOAD_TTL)


def save(key: str, data: bytes) -> None:
    s = store()
    if s.exists(key):
        s.delete(key)
    s.save(key, ContentFile(data))


def size_of(key: str) -> int | None:
    s = store()
    try:
        return s.size(key) if s.exists(key) else None
    except (OSError, ValueError):
        return None


def open_for_read(key: str):
    return store().open(key, "rb")


def delete(key: str) -> None:
    store().delete(key)
