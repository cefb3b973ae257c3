"""Artifacts (objects in the artifact store, under the attempt's own prefix) and live
log chunks (in the database while the attempt runs, then finalised into a log artifact)."""

from django.db import models


class ArtifactType(models.TextChoices):
    LOG = "log"
    JUNIT = "junit"
    COVERAGE = "coverage"
    FILE = "file"


class Artifact(models.Model):
    attempt = models.ForeignKey(
        "runs.JobAttempt", on_delete=models.CASCADE, related_name="artifacts"
    )
    name = models.CharField(max_length=255)
    artifact_type = models.CharField(max_length=20, choices=ArtifactType.choices)
    key = models.CharField(max_length=700, unique=True, help_text="key in the artifact store")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    content_type = models.CharField(max_length=200, default="application/octet-stream")
    recorded = models.BooleanField(
        default=False, help_text="listed in the accepted Complete (or written by us)"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["attempt_id", "name", "id"]

    def __str__(self) -> str:
        return self.name


class LogChunk(models.Model):
    attempt = models.ForeignKey(
        "runs.JobAttempt", on_delete=models.CASCADE, related_name="log_chunks"
    )
    start = models.BigIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["attempt_id", "start"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "start"], name="log_chunk_unique_start")
        ]

    def __str__(self) -> str:
        return f"log {self.attempt_id}@{self.start}"
