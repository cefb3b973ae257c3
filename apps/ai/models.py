"""One advisory analysis per failed attempt. It is only ever shown next to the attempt:
nothing reads it to decide a state, a class, a retry or a check result."""

from django.db import models
from django.utils import timezone


class Outcome(models.TextChoices):
    OK = "ok", "suggestion"
    CACHED = "cached", "suggestion (same input as an earlier one)"
    ERROR = "error", "the provider failed"
    TIMEOUT = "timeout", "the provider did not answer in time"
    RATE_LIMITED = "rate_limited", "the provider limited our requests"
    INVALID_ANSWER = "invalid_answer", "the provider's answer was not of the required shape"
    CIRCUIT_OPEN = "circuit_open", "paused after repeated provider failures"
    DAILY_LIMIT = "daily_limit", "the daily request limit was reached"
    REFUSED = "refused", "refused by the deployment's rules"


WITH_SUGGESTION = (Outcome.OK, Outcome.CACHED)
# Outcomes of a request that reached the provider: they count towards the daily limit.
CALLED = (Outcome.OK, Outcome.ERROR, Outcome.TIMEOUT, Outcome.RATE_LIMITED, Outcome.INVALID_ANSWER)
# Outcomes that say the provider is unwell: enough of them in a row open the breaker.
PROVIDER_FAILURES = (Outcome.ERROR, Outcome.TIMEOUT, Outcome.RATE_LIMITED)


class FailureAnalysis(models.Model):
    attempt = models.OneToOneField(
        "runs.JobAttempt", on_delete=models.CASCADE, related_name="ai_analysis"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    model_name = models.CharField(max_length=200, blank=True)
    input_hash = models.CharField(max_length=64, blank=True, db_index=True)
    bytes_sent = models.PositiveIntegerField(default=0)
    summary = models.TextField(blank=True)
    likely_cause = models.TextField(blank=True)
    next_steps = models.JSONField(default=list, blank=True)
    confidence = models.CharField(max_length=10, blank=True)

    class Meta:
        verbose_name_plural = "failure analyses"
        indexes = [models.Index(fields=["outcome", "created_at"])]

    def __str__(self) -> str:
        return f"analysis of attempt {self.attempt_id}: {self.outcome}"

    @property
    def has_suggestion(self) -> bool:
        return self.outcome in WITH_SUGGESTION
