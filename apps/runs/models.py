"""Repositories, runs, jobs and attempts. State columns are written only by
apps/runs/states.py (compare-and-set with an event row)."""

from django.conf import settings
from django.db import models

from apps.runs.choices import (
    AttemptState,
    CancelReason,
    Environment,
    FailureClass,
    JobState,
    RunState,
    Trigger,
    Visibility,
)
from lib import repourl


class Repository(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    url = models.CharField(
        max_length=500,
        validators=[repourl.validate],
        help_text="clone URL (https://…, ssh://…, git@host:path); a local path only in dev",
    )
    default_branch = models.CharField(max_length=200, default="main")
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.DEV
    )
    github_full_name = models.CharField(
        max_length=200,
        blank=True,
        db_index=True,
        help_text="owner/name on GitHub; webhooks for it create runs here",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="deltaci_repositories"
    )
    member_groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="deltaci_repositories"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return self.name


class Run(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    event_key = models.CharField(
        max_length=255, help_text="idempotency key of the trigger, unique per repository"
    )
    ref = models.CharField(max_length=255)
    commit_sha = models.CharField(max_length=64)
    base_sha = models.CharField(max_length=64, blank=True)
    is_fork = models.BooleanField(
        default=False, help_text="untrusted: a fork's pull request, or see untrusted_reason"
    )
    untrusted_reason = models.CharField(
        max_length=300,
        blank=True,
        db_default="",
        help_text="why a manual, API or rerun run is treated like a fork's (apps/runs/trust.py)",
    )
    pr_number = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(
        max_length=20, choices=RunState.choices, default=RunState.CREATED, db_index=True
    )
    plan = models.JSONField(null=True, blank=True)
    plan_error = models.TextField(blank=True)
    # A discovered plan's recipe, persisted as a Recipe once this run succeeds.
    recipe = models.JSONField(null=True, blank=True, editable=False)
    rerun_scope = models.CharField(max_length=10, blank=True, help_text="all | failed")
    reason = models.TextField(blank=True, help_text="why the run ended as it did")
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    started_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # Reporting to the VCS is tracked beside the state, never as a state.
    reported_at = models.DateTimeField(null=True, blank=True)
    report_status = models.CharField(max_length=20, blank=True)
    report_error = models.TextField(blank=True)
    # The planning lease (apps/runs/planlease.py): who plans this run, until when.
    planning_token = models.CharField(max_length=32, blank=True, db_default="", editable=False)
    planning_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    planning_attempts = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "event_key"], name="run_event_key_unique_per_repo"
            )
        ]
        indexes = [
            models.Index(fields=["repository", "ref", "state"]),
            models.Index(  # the supervisor's look for lost planners
                fields=["planning_lease_until"],
                condition=models.Q(state="PLANNING"),
                name="run_planning_lease",
            ),
        ]
        permissions = [
            ("trigger_run", "Can trigger runs"),
            ("cancel_run", "Can cancel runs"),
            ("rerun_run", "Can rerun runs"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}#{self.pk} {self.ref}@{self.commit_sha[:8]}"


class Job(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="jobs")
    name = models.CharField(max_length=255)
    position = models.PositiveIntegerField(default=0)
    project = models.CharField(max_length=255, blank=True)
    ecosystem = models.CharField(max_length=40, blank=True)
    needs = models.JSONField(default=list, blank=True)
    required = models.BooleanField(default=True)
    allow_failure = models.BooleanField(default=False)
    retries = models.PositiveIntegerField(default=0)
    spec = models.JSONField(default=dict, blank=True, help_text="the job as the planner wrote it")
    state = models.CharField(
        max_length=20, choices=JobState.choices, default=JobState.PENDING, db_index=True
    )
    reason_code = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    triggered_by = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="job_name_unique_per_run")
        ]

    def __str__(self) -> str:
        return self.name


class JobAttempt(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts")
    attempt_number = models.PositiveIntegerField()
    state = models.CharField(
        max_length=20, choices=AttemptState.choices, default=AttemptState.CREATED, db_index=True
    )
    # Denormalised for the dispatch query: oldest run first, without a join to sort on.
    run_created_at = models.DateTimeField(null=True, db_index=True)
    infra_retry = models.BooleanField(
        default=False, help_text="created by an infrastructure retry (not counted in retries)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    leased_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    summary = models.TextField(blank=True)
    progress = models.JSONField(default=dict, blank=True)
    failure_class = models.CharField(max_length=20, choices=FailureClass.choices, blank=True)
    failure_confidence = models.FloatField(null=True, blank=True)
    failure_detail = models.TextField(blank=True)
    log_size = models.BigIntegerField(default=0)
    log_truncated = models.BooleanField(default=False)
    image_digest = models.CharField(
        max_length=80, blank=True, db_default="", help_text="the digest of the image the job ran in"
    )
    image_note = models.TextField(
        blank=True, db_default="", help_text="why the job's image was not used"
    )

    class Meta:
        ordering = ["job_id", "attempt_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "attempt_number"], name="attempt_number_unique_per_job"
            )
        ]
        indexes = [models.Index(fields=["state", "run_created_at", "id"])]

    def __str__(self) -> str:
        return f"{self.job.name} #{self.attempt_number}"


class StateEvent(models.Model):
    """One accepted transition: what the run page's timeline and the metrics read."""

    created_at = models.DateTimeField(db_index=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10)  # run | job | attempt | lease
    object_id = models.BigIntegerField()
    from_state = models.CharField(max_length=20)
    to_state = models.CharField(max_length=20)
    reason = models.CharField(max_length=500, blank=True)
    actor = models.CharField(max_length=200, default="system")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["kind", "object_id"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}: {self.from_state} -> {self.to_state}"


class Recipe(models.Model):
    """A discovered plan template, reused while the build files' fingerprint matches."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="recipes")
    fingerprint = models.CharField(max_length=100)
    recipe = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    source_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "fingerprint"], name="recipe_unique_fingerprint"
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository.name} {self.fingerprint[:19]}"
