"""The Policy form operators edit inline on a repository: every knob with a help text
naming the global default it falls back to, and validation that refuses what the
planner, the lease service or retention could not honour."""

import re
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings

from apps.policies.models import Policy

if TYPE_CHECKING:  # the admin's fieldsets type exists in the stubs only
    from django.contrib.admin.options import _FieldsetSpec

_IMAGE = re.compile(r"^[A-Za-z0-9*?\[][A-Za-z0-9._/:@*?\[\]-]{0,199}$")
_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$")
_JOB = re.compile(r"^[^\s]{1,255}$")
MAX_ITEMS = 200
DAY = 24 * 3600


def _default(text: str, value) -> str:
    return f"{text} Empty: the global default ({value})."


HELP = {
    "allowed_images": _default(
        'JSON list of image glob patterns, e.g. ["python:3.*", "node:20*"]. A job with '
        "another image fails planning; a queued one is refused at lease time.",
        settings.DELTACI_ALLOWED_IMAGES,
    ),
    "image_isolation": (
        "required: a job with an image runs only on a runner with the container executor; "
        "preferred: a runner without one may run it on its host, and the job's log and run "
        "page say its image was not used; off: images are not enforced. Empty: required "
        "for prod repositories, preferred otherwise."
    ),
    "require_digest": (
        "Jobs' images must be pinned by digest (name@sha256:…); others fail at lease time. "
        "Unknown: yes for prod repositories, no otherwise."
    ),
    "egress_mode": _default(
        "Network access of jobs: none, allowlist (only the hosts below) or open.",
        settings.DELTACI_EGRESS_MODE,
    ),
    "egress_allow": _default(
        'JSON list of hosts jobs may reach in allowlist mode, e.g. ["pypi.org", '
        '"*.githubusercontent.com:443"].',
        settings.DELTACI_EGRESS_ALLOW,
    ),
    "max_concurrent_jobs": _default(
        "Jobs of this repository running at once.", settings.DELTACI_MAX_CONCURRENT_JOBS
    ),
    "job_timeout_seconds": _default(
        "A job running longer is cancelled as TIMED_OUT (a job's own timeout wins).",
        f"{settings.DELTACI_JOB_TIMEOUT_SECONDS}s",
    ),
    "run_timeout_seconds": _default(
        "A run lasting longer ends TIMEOUT.", f"{settings.DELTACI_RUN_TIMEOUT_SECONDS}s"
    ),
    "job_retries": _default(
        "Retries of a job after a retryable (tooling, flaky) failure.",
        settings.DELTACI_JOB_RETRIES,
    ),
    "infra_retry_budget": _default(
        "Retries after infrastructure failures (runner lost), not counted as job retries.",
        settings.DELTACI_INFRA_RETRY_BUDGET,
    ),
    "lease_ttl_seconds": _default(
        "A lease not renewed for this long expires (at least 3 heartbeat intervals).",
        f"{settings.DELTACI_LEASE_TTL_SECONDS}s",
    ),
    "heartbeat_interval_seconds": _default(
        "How often runners renew their lease.", f"{settings.DELTACI_HEARTBEAT_INTERVAL_SECONDS}s"
    ),
    "cancel_superseded": "A newer push to the same ref cancels older runs. Unknown: yes.",
    "log_retention_days": _default(
        "Logs older than this are deleted by the retention cleanup.",
        f"{settings.DELTACI_LOG_RETENTION_DAYS} days",
    ),
    "artifact_retention_days": _default(
        "Artifacts (JUnit reports, files) older than this are deleted by the retention "
        "cleanup; run, job and test result metadata stay.",
        f"{settings.DELTACI_ARTIFACT_RETENTION_DAYS} days",
    ),
    "max_log_bytes": _default(
        "A log is cut here, with a visible marker.", f"{settings.DELTACI_MAX_LOG_BYTES} bytes"
    ),
    "max_artifact_bytes": _default(
        "Largest artifact a runner may upload.", f"{settings.DELTACI_MAX_ARTIFACT_BYTES} bytes"
    ),
    "required_jobs": 'JSON list of job names that always run, e.g. ["lint"].',
    "planning_mode": _default(
        "diff runs what the change affects; full runs every discovered job.",
        settings.DELTACI_PLANNING_MODE,
    ),
    "caching_enabled": "Caches for jobs (always read-only for forks). Unknown: on.",
    "ai_enabled": "Advisory AI explanations of failures (off unless enabled here).",
    "build_tags": "Tag pushes create runs.",
}

FIELDSETS: "_FieldsetSpec" = [
    ("Images", {"fields": ["allowed_images", "image_isolation", "require_digest"]}),
    ("Network egress", {"fields": ["egress_mode", "egress_allow"]}),
    (
        "Time limits",
        {
            "fields": [
                "job_timeout_seconds",
                "run_timeout_seconds",
                "lease_ttl_seconds",
                "heartbeat_interval_seconds",
            ]
        },
    ),
    ("Concurrency", {"fields": ["max_concurrent_jobs", "cancel_superseded"]}),
    ("Retention", {"fields": ["log_retention_days", "artifact_retention_days"]}),
    ("Retries", {"fields": ["job_retries", "infra_retry_budget"]}),
    ("Size limits", {"fields": ["max_log_bytes", "max_artifact_bytes"]}),
    (
        "Planning",
        {"fields": ["planning_mode", "required_jobs", "caching_enabled", "build_tags"]},
    ),
    ("AI", {"fields": ["ai_enabled"]}),
]

_BOUNDS = {
    "max_concurrent_jobs": (1, 10_000),
    "job_timeout_seconds": (10, 7 * DAY),
    "run_timeout_seconds": (10, 14 * DAY),
    "job_retries": (0, 10),
    "infra_retry_budget": (0, 10),
    "lease_ttl_seconds": (3, DAY),
    "heartbeat_interval_seconds": (1, 3600),
    "log_retention_days": (1, 3650),
    "artifact_retention_days": (1, 3650),
    "max_log_bytes": (1024, 1 << 34),
    "max_artifact_bytes": (1024, 1 << 40),
}


def _string_list(value, pattern: re.Pattern, what: str) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise forms.ValidationError(f'Enter a JSON list of {what}, e.g. ["…"].')
    if len(value) > MAX_ITEMS:
        raise forms.ValidationError(f"At most {MAX_ITEMS} {what}.")
    bad = [v for v in value if not isinstance(v, str) or not pattern.match(v)]
    if bad:
        raise forms.ValidationError(
            f"Not valid {what}: {', '.join(repr(b)[:60] for b in bad[:5])}."
        )
    return list(dict.fromkeys(value))


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = [name for _, opts in FIELDSETS for name in opts["fields"]]
        help_texts = HELP

    def clean_allowed_images(self) -> list[str]:
        return _string_list(self.cleaned_data.get("allowed_images"), _IMAGE, "image patterns")

    def clean_egress_allow(self) -> list[str]:
        return _string_list(self.cleaned_data.get("egress_allow"), _HOST, "host names")

    def clean_required_jobs(self) -> list[str]:
        return _string_list(self.cleaned_data.get("required_jobs"), _JOB, "job names")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean() returns
        for name, (low, high) in _BOUNDS.items():
            value = data.get(name)
            if value is not None and not low <= value <= high:
                self.add_error(name, f"Must be between {low} and {high}.")
        ttl = data.get("lease_ttl_seconds") or settings.DELTACI_LEASE_TTL_SECONDS
        beat = data.get("heartbeat_interval_seconds") or settings.DELTACI_HEARTBEAT_INTERVAL_SECONDS
        if (data.get("lease_ttl_seconds") or data.get("heartbeat_interval_seconds")) and (
            ttl < 3 * beat
        ):
            self.add_error(
                "lease_ttl_seconds",
                f"The lease TTL ({ttl}s) must be at least 3 heartbeat intervals ({3 * beat}s).",
            )
        job, run = data.get("job_timeout_seconds"), data.get("run_timeout_seconds")
        if job and run and run < job:
            self.add_error("run_timeout_seconds", "A run cannot time out before its jobs do.")
        mode = data.get("egress_mode") or settings.DELTACI_EGRESS_MODE
        if mode == "allowlist" and not (data.get("egress_allow") or settings.DELTACI_EGRESS_ALLOW):
            self.add_error("egress_allow", "Allowlist mode needs at least one host.")
        return data
