"""Lease-scoped bytes: live log chunks, artifact upload requests, and the check of the
artifact references a Complete or CancelAck lists. Store I/O (a HEAD per reference on
S3) happens here, before the short transaction that records the result."""

import hashlib

from django.db import transaction

from apps.artifacts import logs, storage
from apps.artifacts.models import Artifact
from apps.audit.actions import record
from apps.policies.effective import policy_for
from apps.runners import leasing
from apps.runners.models import Lease, Runner
from apps.runs.choices import ATTEMPT_HELD
from lib.db import write_transaction

# The control plane writes the finalised log under this name in the attempt's prefix.
RESERVED_NAMES = frozenset({"log.txt"})


class UploadRefused(Exception):
    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


@transaction.atomic
def append_log(runner: Runner, lease_id: str, start: int, data: bytes) -> int:
    """Append a chunk at `start`; returns the next offset (raises logs.LogGap). The lease
    row is locked so no chunk lands after the Complete that ends the attempt."""
    lease = leasing.find_lease(runner, lease_id, lock=True)
    leasing.require_live(lease)
    attempt = lease.attempt
    if attempt.state not in ATTEMPT_HELD:
        raise leasing.StaleLease("LEASE_ENDED")
    limit = policy_for(attempt.run.repository).max_log_bytes
    return logs.append(attempt, start, data, max_bytes=limit)


def request_upload(runner: Runner, lease_id: str, message: dict) -> dict:
    """An upload URL for exactly one key in the attempt's own prefix, valid 15 minutes."""
    lease = leasing.find_lease(runner, lease_id)
    leasing.require_live(lease)
    attempt = lease.attempt
    limit = policy_for(attempt.run.repository).max_artifact_bytes
    if message["size"] > limit:
        raise UploadRefused(
            "PAYLOAD_TOO_LARGE", f"artifact exceeds {limit} bytes", {"limit": limit}
        )
    name = message["name"]
    if name in RESERVED_NAMES:
        raise UploadRefused("INVALID_REQUEST", f"{name!r} is reserved for the job's log")
    key = storage.attempt_prefix(attempt) + name
    art, _ = Artifact.objects.update_or_create(
        key=key,
        defaults={
            "attempt": attempt,
            "name": name,
            "artifact_type": message["artifact_type"],
            "size": message["size"],
            "sha256": message.get("sha256", ""),
            "content_type": message["content_type"],
        },
    )
    upload = storage.upload_instructions(
        key, size=message["size"], content_type=message["content_type"]
    )
    return {"artifact_id": str(art.pk), "uri": storage.uri_for(key), "upload": upload}


def store_upload(key: str, data: bytes) -> None:
    """Write the bytes of a signed local upload URL (apps/runners/api/upload.py). The URL
    ends with its attempt: only while the attempt holds a live lease, and never over an
    artifact a Complete or CancelAck recorded (finished artifacts are immutable). The
    lease row stays locked while the bytes are written, so an attempt cannot end between
    the check and the write."""
    art = Artifact.objects.filter(key=key).only("attempt_id").first()
    if art is None:
        raise UploadRefused("NOT_FOUND", "no such artifact")
    with write_transaction():
        lease = (
            Lease.objects.select_for_update(of=("self",))
            .select_related("attempt")
            .filter(attempt_id=art.attempt_id)
            .first()
        )
        art = Artifact.objects.get(pk=art.pk)
        if art.recorded:
            raise UploadRefused("INVALID_STATE", "this artifact is finished and cannot be replaced")
        if lease is None or leasing.stale_reason(lease) or lease.attempt.state not in ATTEMPT_HELD:
            raise UploadRefused("FORBIDDEN", "this upload URL ended with its attempt")
        if art.sha256 and hashlib.sha256(data).hexdigest() != art.sha256:
            raise UploadRefused("INVALID_REQUEST", "sha256 does not match the upload request")
        storage.save(key, data)


def verified_keys(runner: Runner, lease_id: str, refs: list[dict] | None) -> frozenset[str]:
    """The referenced artifacts that were requested through this lease, lie in the
    attempt's own prefix and exist in the store within the size limit. Each other
    reference is audited and ignored; the message itself still counts."""
    if not refs:
        return frozenset()
    try:
        lease = leasing.find_lease(runner, lease_id)
    except leasing.StaleLease:
        return frozenset()  # the message will be refused anyway
    if leasing.stale_reason(lease):
        return frozenset()
    return _check_refs(lease, refs, f"runner:{runner.name}")


def _check_refs(lease: Lease, refs: list[dict], actor: str) -> frozenset[str]:
    attempt = lease.attempt
    prefix = storage.attempt_prefix(attempt)
    limit = policy_for(attempt.run.repository).max_artifact_bytes
    known = set(Artifact.objects.filter(attempt=attempt).values_list("key", flat=True))
    keys: set[str] = set()
    for ref in refs:
        uri = str(ref.get("uri", ""))
        key = storage.key_from_uri(uri)
        if not key or not key.startswith(prefix) or key not in known:
            why = "not in this attempt's storage prefix or not requested through its lease"
        else:
            size = storage.size_of(key)
            why = (
                "not uploaded"
                if size is None
                else (f"larger than {limit} bytes" if size > limit else "")
            )
            if not why:
                keys.add(key)
                continue
        record("artifact.rejected", actor=actor, run=attempt.run, target=uri[:200], why=why)
    return frozenset(keys)
