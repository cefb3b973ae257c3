"""Per-repository Policy (empty fields fall back to the global defaults in settings) and
secrets encrypted at rest."""

from django.db import models

from apps.runs.choices import Environment


class EgressMode(models.TextChoices):
    NONE = "none"
    ALLOWLIST = "allowlist"
    OPEN = "open"


class ImageIsolation(models.TextChoices):
    REQUIRED = "required"
    PREFERRED = "preferred"
    OFF = "off"


class PlanningMode(models.TextChoices):
    DIFF = "diff"
    FULL = "full"


class Policy(models.Model):
    repository = models.OneToOneField(
        "runs.Repository", on_delete=models.CASCADE, related_name="policy"
    )
    allowed_images = models.JSONField(
        default=list, blank=True, help_text='glob patterns, e.g. ["python:3.*", "node:20*"]'
    )
    image_isolation = models.CharField(
        max_length=10, choices=ImageIsolation.choices, blank=True, db_default=""
    )
    require_digest = models.BooleanField(null=True, blank=True)
    egress_mode = models.CharField(max_length=10, choices=EgressMode.choices, blank=True)
    egress_allow = models.JSONField(default=list, blank=True, help_text="hosts for allowlist")
    max_concurrent_jobs = models.PositiveIntegerField(null=True, blank=True)
    job_timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    run_timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    job_retries = models.PositiveIntegerField(null=True, blank=True)
    infra_retry_budget = models.PositiveIntegerField(null=True, blank=True)
    lease_ttl_seconds = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    cancel_superseded = models.BooleanField(null=True, blank=True)
    log_retention_days = models.PositiveIntegerField(null=True, blank=True)
    artifact_retention_days = models.PositiveIntegerField(null=True, blank=True)
    max_log_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    max_artifact_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    required_jobs = models.JSONField(default=list, blank=True)
    planning_mode = models.CharField(max_length=10, choices=PlanningMode.choices, blank=True)
    caching_enabled = models.BooleanField(null=True, blank=True)
    ai_enabled = models.BooleanField(
        default=False,
        help_text="advisory AI explanation of failed jobs (needs DELTACI_AI_URL); never "
        "changes a result",
    )
    ai_allow_forks = models.BooleanField(
        default=False,
        db_default=False,  # expand-only: old code inserting policies keeps working
        help_text="also send failures of fork pull requests to the AI provider",
    )
    build_tags = models.BooleanField(default=False, help_text="tag pushes create runs")

    class Meta:
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return f"policy of {self.repository_id}"


class Secret(models.Model):
    """A named secret for one repository and environment. The value is write-only."""

    repository = models.ForeignKey(
        "runs.Repository", on_delete=models.CASCADE, related_name="secrets"
    )
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.DEV
    )
    name = models.CharField(max_length=100)
    ciphertext = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "environment", "name"], name="secret_unique_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.environment})"
