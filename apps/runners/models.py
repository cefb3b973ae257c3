"""Runners, their registration tokens, and leases. Tokens and lease ids are stored only
as SHA-256 hashes (lib/tokens.py)."""

from django.db import models

from apps.runs.choices import Environment, LeaseState


class RunnerRegistrationToken(models.Model):
    name = models.CharField(max_length=100, blank=True)
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.DEV
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False, help_text="of the hash")
    labels = models.JSONField(default=list, blank=True, help_text="capabilities every runner gets")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or 'token'} ({self.environment}, {self.token_prefix})"


class Runner(models.Model):
    name = models.CharField(max_length=100)
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.DEV
    )
    capabilities = models.JSONField(default=list, blank=True)
    version = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False)
    registration_token = models.ForeignKey(
        RunnerRegistrationToken, null=True, blank=True, on_delete=models.SET_NULL
    )
    enabled = models.BooleanField(default=True)
    draining = models.BooleanField(default=False, help_text="finishes its job, takes no new one")
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Lease(models.Model):
    attempt = models.OneToOneField(
        "runs.JobAttempt", on_delete=models.CASCADE, related_name="lease"
    )
    runner = models.ForeignKey(Runner, on_delete=models.PROTECT, related_name="leases")
    lease_hash = models.CharField(max_length=64, unique=True, editable=False)
    lease_prefix = models.CharField(max_length=12, editable=False)
    state = models.CharField(
        max_length=20, choices=LeaseState.choices, default=LeaseState.GRANTED, db_index=True
    )
    granted_at = models.DateTimeField()
    ack_deadline = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 of the accepted Complete, so its exact repeat is answered 200 again.
    complete_digest = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["-granted_at"]

    def __str__(self) -> str:
        return f"lease {self.lease_prefix} ({self.state})"
