"""What the GitHub integration remembers: the deliveries it received, and for each run
the check run it publishes (and for each pull request the one comment it edits), so
reporting is idempotent across retries, redeliveries and workers."""

from django.db import models


class DeliveryOutcome(models.TextChoices):
    CREATED = "created", "run created"
    DUPLICATE = "duplicate", "run existed (redelivery)"
    CANCELED = "canceled", "runs cancelled"
    IGNORED = "ignored", "ignored"
    PONG = "pong", "ping answered"
    REJECTED = "rejected", "malformed payload"


class WebhookDelivery(models.Model):
    """One signed delivery (X-GitHub-Delivery). A redelivery updates its row; the run's
    event_key, not this row, is what stops a second run."""

    delivery_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=50)
    action = models.CharField(max_length=50, blank=True)
    full_name = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=20, choices=DeliveryOutcome.choices)
    detail = models.CharField(max_length=500, blank=True)
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    times_received = models.PositiveIntegerField(default=1)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_received_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}: {self.outcome}"


class RunReport(models.Model):
    """The GitHub side of one run: its check run (or commit status) and what was last
    published. `busy_until`/`dirty` serialise reporters without holding a row lock
    during HTTP calls (a task that finds another reporting marks the row dirty, and the
    holder reports again before letting go)."""

    run = models.OneToOneField("runs.Run", on_delete=models.CASCADE, related_name="vcs_report")
    check_run_id = models.BigIntegerField(null=True, blank=True)
    # A create was sent but its answer never arrived: look the check run up before
    # creating another one.
    check_run_unconfirmed = models.BooleanField(default=False)
    last_state = models.CharField(max_length=20, blank=True)
    last_digest = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    busy_until = models.DateTimeField(null=True, blank=True)
    dirty = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"report of run {self.run_id}: {self.last_state or '-'}"


class PullRequestComment(models.Model):
    """The one comment Delta CI keeps on a pull request: created by the first run of the
    PR that finishes, then edited in place by every later run (new pushes, reruns)."""

    repository = models.ForeignKey("runs.Repository", on_delete=models.CASCADE, related_name="+")
    pr_number = models.PositiveIntegerField()
    comment_id = models.BigIntegerField(null=True, blank=True)
    comment_unconfirmed = models.BooleanField(default=False)
    # The newest run shown; an older run finishing late never overwrites a newer one.
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_digest = models.CharField(max_length=64, blank=True)
    busy_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "pr_number"], name="one_comment_per_pull_request"
            )
        ]

    def __str__(self) -> str:
        return f"comment on #{self.pr_number}"


class RunnerCloneToken(models.Model):
    """The read-only clone token runners of a private repository are handed, minted by the
    worker (planning, and a beat task before it expires) and stored encrypted, so granting
    a lease reads a row and never waits on GitHub inside a web request."""

    repository = models.OneToOneField(
        "runs.Repository", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    ciphertext = models.BinaryField()
    expires_at = models.DateTimeField(db_index=True)
    minted_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"runner clone token for repository {self.repository_id}"
