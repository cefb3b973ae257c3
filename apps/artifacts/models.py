"""Artifacts (objects in the artifact store, under the attempt's own prefix) and live
log chunks (in the database while the attempt runs, then finalised into a log artifact)."""

import hashlib

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


class TestStatus(models.TextChoices):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


class TestReport(models.Model):
    """One parse of one JUnit artifact: what it held, or why it was rejected. Its
    existence makes parsing idempotent (an artifact is parsed at most once)."""

    __test__ = False  # not a pytest class

    artifact = models.OneToOneField(Artifact, on_delete=models.CASCADE, related_name="report")
    attempt = models.ForeignKey(
        "runs.JobAttempt", on_delete=models.CASCADE, related_name="test_reports"
    )
    parsed_at = models.DateTimeField(auto_now_add=True)
    error = models.TextField(blank=True, help_text="why the report was rejected (empty if parsed)")
    total = models.PositiveIntegerField(default=0)
    truncated = models.BooleanField(
        default=False, help_text="more test cases than the parser keeps"
    )
    seen = models.PositiveIntegerField(
        default=0, db_default=0, help_text="distinct tests in the report"
    )
    duration = models.FloatField(null=True, blank=True, help_text="seconds, as reported")
    suite_totals = models.JSONField(
        default=dict,
        db_default={},
        blank=True,
        help_text="counts from suites that list no test cases",
    )

    class Meta:
        ordering = ["attempt_id", "id"]

    def __str__(self) -> str:
        return f"report of {self.artifact_id}"


class TestResult(models.Model):
    """One test case of one attempt. `job` and `run` are denormalised so the run page
    counts, lists and detects flaky tests with single indexed queries."""

    __test__ = False

    report = models.ForeignKey(TestReport, on_delete=models.CASCADE, related_name="results")
    attempt = models.ForeignKey(
        "runs.JobAttempt", on_delete=models.CASCADE, related_name="test_results"
    )
    job = models.ForeignKey("runs.Job", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="+")
    suite = models.CharField(max_length=255, blank=True)
    classname = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=TestStatus.choices)
    duration = models.FloatField(null=True, blank=True, help_text="seconds")
    message = models.TextField(blank=True)
    flaky = models.BooleanField(
        default=False, db_default=False, help_text="its tries in one report disagreed"
    )
    tries = models.PositiveSmallIntegerField(default=1, db_default=1)
    # Identity over history: the same test of the same job in other runs (see test_key).
    test_key = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["attempt_id", "id"]
        indexes = [
            models.Index(fields=["run", "status"]),
            models.Index(fields=["job", "classname", "name"]),
            models.Index(fields=["test_key", "run"]),
        ]

    def __str__(self) -> str:
        return f"{self.classname}.{self.name}: {self.status}"


def test_key(repository_id: int, job_name: str, suite: str, classname: str, name: str) -> int:
    """A test's identity across runs: its repository, job, class (or suite) and name, as a
    signed 64-bit digest so one indexed integer finds its history."""
    text = "\0".join((str(repository_id), job_name, classname or suite, name))
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


test_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
