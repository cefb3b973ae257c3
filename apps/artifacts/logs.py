"""Live logs: chunks appended by offset while the attempt runs (idempotent, capped by
policy with a visible marker), read live by the run page, finalised into one log
artifact in the store when the attempt ends."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef

from apps.artifacts import storage
from apps.artifacts.models import Artifact, ArtifactType, LogChunk
from apps.runs.choices import ATTEMPT_TERMINAL
from apps.runs.models import JobAttempt

FINAL_NAME = "log.txt"  # reserved: runners may not upload an artifact of this name
FINALIZE_QUIET = timedelta(minutes=2)  # leave the after-commit task this long to do it
FINALIZE_HORIZON = timedelta(days=1)  # runs older than this are not looked at again


class LogGap(Exception):
    def __init__(self, next_offset: int) -> None:
        super().__init__(f"gap: next offset is {next_offset}")
        self.next_offset = next_offset


def truncation_marker(limit: int) -> bytes:
    return f"\n[delta-ci: log truncated at {limit} bytes by policy]\n".encode()


@transaction.atomic
def append(attempt: JobAttempt, start: int, data: bytes, *, max_bytes: int) -> int:
    """Append `data` written at runner offset `start`; returns the next offset. Offsets
    count what the runner sent; past `max_bytes` bytes are acknowledged, not stored."""
    row = (
        JobAttempt.objects.select_for_update().only("log_size", "log_truncated").get(pk=attempt.pk)
    )
    size = row.log_size
    if start > size:
        raise LogGap(size)
    end = start + len(data)
    if end <= size:
        return size  # a repeat of bytes already stored
    new = data[size - start :]
    stored_room = max_bytes - size
    if not row.log_truncated:
        keep = new[: max(stored_room, 0)]
        if keep:
            LogChunk.objects.create(attempt_id=attempt.pk, start=size, data=keep)
        if len(keep) < len(new):
            LogChunk.objects.create(
                attempt_id=attempt.pk, start=size + len(keep), data=truncation_marker(max_bytes)
            )
            JobAttempt.objects.filter(pk=attempt.pk).update(log_truncated=True)
    JobAttempt.objects.filter(pk=attempt.pk).update(log_size=F("log_size") + len(new))
    return end


def read(attempt: JobAttempt, start: int = 0, limit: int | None = None) -> bytes:
    """The stored log (live chunks, else the finalised artifact) from byte `start`."""
    chunks = list(
        LogChunk.objects.filter(attempt=attempt).order_by("start").values_list("data", flat=True)
    )
    if chunks:
        data = b"".join(bytes(c) for c in chunks)
    else:
        art = Artifact.objects.filter(key=log_key(attempt), deleted_at__isnull=True).first()
        if art is None:
            return b""
        try:
            with storage.open_for_read(art.key) as fh:
                data = fh.read()
        except (OSError, FileNotFoundError):
            return b""
    data = data[start:]
    return data if limit is None else data[:limit]


def log_key(attempt: JobAttempt) -> str:
    """The finalised log's key: reserved in the attempt's prefix, so a runner artifact
    that merely declares the type "log" can never shadow it."""
    return storage.attempt_prefix(attempt) + FINAL_NAME


def tail(attempt: JobAttempt, nbytes: int = 64 * 1024) -> bytes:
    data = read(attempt)
    return data[-nbytes:]


def finalize(attempt_id: int) -> Artifact | None:
    """Write the log into the store as one artifact and drop the chunks. I/O happens
    before the rows change, so a crash leaves the chunks (and a retry) intact."""
    attempt = JobAttempt.objects.get(pk=attempt_id)
    key = log_key(attempt)
    if Artifact.objects.filter(key=key).exists():
        return None
    data = read(attempt)
    storage.save(key, data)
    with transaction.atomic():
        art = Artifact.objects.create(
            attempt=attempt,
            name=FINAL_NAME,
            artifact_type=ArtifactType.LOG,
            key=key,
            size=len(data),
            content_type="text/plain; charset=utf-8",
            recorded=True,
        )
        LogChunk.objects.filter(attempt=attempt).delete()
    return art


def left_behind(now: datetime, limit: int = 200) -> list[int]:
    """Attempts that ran and ended a while ago but whose log was never finalised (the
    after-commit task was not sent, or its worker died): for reconcile_logs. The run's
    creation time bounds the scan through the (state, run_created_at) index."""
    finalised = Artifact.objects.filter(attempt_id=OuterRef("pk"), name=FINAL_NAME)
    return list(
        JobAttempt.objects.filter(
            state__in=ATTEMPT_TERMINAL,
            run_created_at__gte=now - FINALIZE_HORIZON,
            leased_at__isnull=False,
            finished_at__lte=now - FINALIZE_QUIET,
        )
        .exclude(Exists(finalised))
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )
