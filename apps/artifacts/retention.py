"""Retention: logs and artifacts older than their repository's policy are deleted.

Storage objects go first, then the rows are marked (`Artifact.deleted_at`), in bounded
batches: an interruption between the two leaves rows whose object is already gone, and
the next cleanup deletes again (deleting a missing object is a no-op) and marks them.
Leftover live log chunks of finished attempts are deleted as rows. Run, job and attempt
metadata (and parsed test results) stay. The command, the admin action and the daily
beat task all call `cleanup`.
"""

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.db.models import QuerySet, Sum
from django.utils import timezone

from apps.artifacts import storage
from apps.artifacts.models import Artifact, ArtifactType, LogChunk
from apps.audit.actions import record
from apps.policies.effective import policy_for
from apps.runs.choices import ATTEMPT_TERMINAL
from apps.runs.models import JobAttempt, Repository

log = logging.getLogger(__name__)
BATCH_SIZE = 500
MAX_BATCHES = 2000  # per kind and repository and call: the beat task always ends


@dataclass
class RepoCounts:
    repository: str
    log_retention_days: int
    artifact_retention_days: int
    logs: int = 0
    log_chunks: int = 0
    artifacts: int = 0
    bytes: int = 0
    failed: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.logs or self.log_chunks or self.artifacts or self.failed)


@dataclass
class Report:
    dry_run: bool
    repos: list[RepoCounts] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.repos)

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            **{k: self.total(k) for k in ("logs", "log_chunks", "artifacts", "bytes", "failed")},
            "repositories": [asdict(r) for r in self.repos if r.anything],
        }

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        out = [
            f"{r.repository}: {verb} {r.logs} log(s), {r.log_chunks} log chunk(s), "
            f"{r.artifacts} artifact(s), {r.bytes} bytes"
            + (f"; {r.failed} object(s) could not be deleted" if r.failed else "")
            for r in self.repos
        ]
        out.append(
            f"total: {verb} {self.total('logs')} log(s), {self.total('log_chunks')} log "
            f"chunk(s), {self.total('artifacts')} artifact(s), {self.total('bytes')} bytes"
        )
        return out


def _expired_logs(repo: Repository, cutoff: datetime) -> QuerySet[Artifact]:
    return Artifact.objects.filter(
        attempt__run__repository=repo,
        artifact_type=ArtifactType.LOG,
        deleted_at__isnull=True,
        created_at__lt=cutoff,
    )


def _expired_artifacts(repo: Repository, cutoff: datetime) -> QuerySet[Artifact]:
    return Artifact.objects.filter(
        attempt__run__repository=repo, deleted_at__isnull=True, created_at__lt=cutoff
    ).exclude(artifact_type=ArtifactType.LOG)


def _leftover_chunks(repo: Repository, cutoff: datetime) -> QuerySet[LogChunk]:
    finished = JobAttempt.objects.filter(
        run__repository=repo, state__in=ATTEMPT_TERMINAL, finished_at__lt=cutoff
    )
    return LogChunk.objects.filter(attempt__in=finished.values("pk"))


def _delete_objects(qs: QuerySet[Artifact], now: datetime, counts: RepoCounts) -> int:
    """Delete the objects, then mark their rows; returns rows marked."""
    marked = 0
    failed: list[int] = []
    for _ in range(MAX_BATCHES):
        batch = list(qs.exclude(pk__in=failed).values_list("pk", "key", "size")[:BATCH_SIZE])
        if not batch:
            break
        gone = []
        for pk, key, size in batch:
            try:
                storage.delete(key)
            except (OSError, BotoCoreError, ClientError) as exc:
                log.warning("retention: could not delete %s: %s", key, exc)
                failed.append(pk)
                continue
            gone.append((pk, size))
        ids = [pk for pk, _ in gone]
        if ids:
            marked += Artifact.objects.filter(pk__in=ids, deleted_at__isnull=True).update(
                deleted_at=now
            )
            counts.bytes += sum(size for _, size in gone)
    counts.failed += len(failed)
    return marked


def _delete_chunks(qs: QuerySet[LogChunk]) -> int:
    deleted = 0
    for _ in range(MAX_BATCHES):
        ids = list(qs.values_list("pk", flat=True)[:BATCH_SIZE])
        if not ids:
            break
        deleted += LogChunk.objects.filter(pk__in=ids).delete()[0]
    return deleted


def cleanup_repository(
    repo: Repository, *, dry_run: bool, now: datetime, actor: str = "system"
) -> RepoCounts:
    policy = policy_for(repo)
    counts = RepoCounts(
        repository=repo.name,
        log_retention_days=policy.log_retention_days,
        artifact_retention_days=policy.artifact_retention_days,
    )
    log_cutoff = now - timedelta(days=policy.log_retention_days)
    artifact_cutoff = now - timedelta(days=policy.artifact_retention_days)
    logs, artifacts = _expired_logs(repo, log_cutoff), _expired_artifacts(repo, artifact_cutoff)
    chunks = _leftover_chunks(repo, log_cutoff)
    if dry_run:
        counts.logs, counts.artifacts = logs.count(), artifacts.count()
        counts.log_chunks = chunks.count()
        counts.bytes = (logs.aggregate(s=Sum("size"))["s"] or 0) + (
            artifacts.aggregate(s=Sum("size"))["s"] or 0
        )
        return counts
    counts.logs = _delete_objects(logs, now, counts)
    counts.artifacts = _delete_objects(artifacts, now, counts)
    counts.log_chunks = _delete_chunks(chunks)
    if counts.anything:
        details = {k: v for k, v in asdict(counts).items() if k != "repository"}
        record("retention.cleanup", actor=actor, repository=repo, target=repo.name, **details)
    return counts


def cleanup(
    *,
    repositories: Iterable[Repository] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    actor: str = "system",
) -> Report:
    """Apply every repository's retention (or only `repositories`'). A real cleanup
    writes one audit event per repository that lost something and one with the totals."""
    now = now or timezone.now()
    repos = list(repositories if repositories is not None else Repository.objects.all())
    report = Report(dry_run=dry_run)
    for repo in repos:
        report.repos.append(cleanup_repository(repo, dry_run=dry_run, now=now, actor=actor))
    if not dry_run:
        record(
            "retention.run",
            actor=actor,
            target=",".join(r.name for r in repos)[:200] if repositories is not None else "all",
            **{k: v for k, v in report.as_dict().items() if k != "repositories"},
            repositories=len(repos),
        )
    return report
