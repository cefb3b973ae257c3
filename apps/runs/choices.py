"""State enums, grouped (STYLE habit 5). The transitions between them are in
apps/runs/states.py and nowhere else."""

from django.db import models


class RunState(models.TextChoices):
    CREATED = "CREATED"
    PLANNING = "PLANNING"
    PLAN_FAILED = "PLAN_FAILED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TIMEOUT = "TIMEOUT"


RUN_TERMINAL = (RunState.SUCCESS, RunState.FAILED, RunState.CANCELED, RunState.TIMEOUT)
RUN_ACTIVE = (
    RunState.CREATED,
    RunState.PLANNING,
    RunState.QUEUED,
    RunState.RUNNING,
    RunState.CANCEL_REQUESTED,
)
# A run whose jobs are being dispatched and run (planned, not finished, not cancelling).
RUN_EXECUTING = (RunState.QUEUED, RunState.RUNNING)


class JobState(models.TextChoices):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"


JOB_TERMINAL = (
    JobState.SUCCEEDED,
    JobState.FAILED,
    JobState.TIMED_OUT,
    JobState.CANCELED,
    JobState.SKIPPED,
)
JOB_ACTIVE = (JobState.PENDING, JobState.QUEUED, JobState.RUNNING)
# A job that ended without succeeding (what a failed-only rerun runs again).
JOB_UNSUCCESSFUL = (JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELED)


class AttemptState(models.TextChoices):
    CREATED = "CREATED"
    QUEUED = "QUEUED"
    LEASED = "LEASED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    UPLOADING = "UPLOADING"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"
    STALE = "STALE"


# An attempt a runner holds (it has a live lease).
ATTEMPT_LEASED = (
    AttemptState.LEASED,
    AttemptState.STARTING,
    AttemptState.RUNNING,
    AttemptState.UPLOADING,
)
# An attempt that still holds its runner: leased, or asked to stop and not yet stopped.
ATTEMPT_HELD = (*ATTEMPT_LEASED, AttemptState.CANCEL_REQUESTED)
# An attempt whose heartbeats carry progress reports (it has started running).
ATTEMPT_REPORTING = (AttemptState.RUNNING, AttemptState.UPLOADING, AttemptState.CANCEL_REQUESTED)
# An attempt that ended badly: the retry rules (apps/runs/engine.py) look at these.
ATTEMPT_FAILED = (AttemptState.STALE, AttemptState.FAILED, AttemptState.TIMED_OUT)
ATTEMPT_TERMINAL = (
    AttemptState.SUCCEEDED,
    AttemptState.FAILED,
    AttemptState.TIMED_OUT,
    AttemptState.CANCELED,
    AttemptState.STALE,
)
ATTEMPT_ACTIVE = (
    AttemptState.CREATED,
    AttemptState.QUEUED,
    *ATTEMPT_LEASED,
    AttemptState.CANCEL_REQUESTED,
)


class LeaseState(models.TextChoices):
    GRANTED = "GRANTED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


LEASE_LIVE = (LeaseState.GRANTED, LeaseState.ACTIVE)
LEASE_ENDED = (LeaseState.EXPIRED, LeaseState.REVOKED, LeaseState.COMPLETED, LeaseState.CANCELED)


class Trigger(models.TextChoices):
    PUSH = "push"
    PULL_REQUEST = "pull_request"
    MANUAL = "manual"
    RERUN = "rerun"
    API = "api"


class CancelReason(models.TextChoices):
    RUN_CANCELED = "RUN_CANCELED"
    JOB_CANCELED = "JOB_CANCELED"
    TIMEOUT = "TIMEOUT"
    SUPERSEDED = "SUPERSEDED"


class FailureClass(models.TextChoices):
    INFRASTRUCTURE = "infrastructure"
    TOOLING = "tooling"
    USER = "user"
    FLAKY = "flaky"


class Visibility(models.TextChoices):
    PUBLIC = "public"
    PRIVATE = "private"


class Environment(models.TextChoices):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"
