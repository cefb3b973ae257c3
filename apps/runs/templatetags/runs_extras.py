"""Small display filters for the run pages."""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

from apps.runs.choices import RUN_ACTIVE

register = template.Library()

_GOOD = {"SUCCESS", "SUCCEEDED", "passed"}
_BAD = {"FAILED", "PLAN_FAILED", "TIMEOUT", "TIMED_OUT", "STALE", "failed", "error"}
_QUIET = {"CANCELED", "CANCEL_REQUESTED", "SKIPPED", "skipped"}


def human_seconds(seconds: float | None) -> str:
    """1h 02m, 3m 05s, 12s, <1s (never "0s"), or an em dash."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return "<1s"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@register.filter
def duration(value: timedelta | None) -> str:
    return human_seconds(None if value is None else value.total_seconds())


@register.filter
def elapsed(start: datetime | None, end: datetime | None) -> str:
    """From start to end (or now): the list's run durations, like the run page's."""
    if start is None:
        return "—"
    return human_seconds(((end or timezone.now()) - start).total_seconds())


@register.filter
def seconds(value: float | None) -> str:
    return "" if value is None else human_seconds(value)


@register.filter
def state_class(state: str) -> str:
    """The CSS class of a state badge (a fixed set: never derived from the input)."""
    if state in _GOOD:
        return "st-good"
    if state in _BAD:
        return "st-bad"
    if state in _QUIET:
        return "st-quiet"
    if state in RUN_ACTIVE or state in {"PENDING", "QUEUED", "RUNNING", "LEASED", "STARTING"}:
        return "st-active"
    return "st-other"


@register.filter
def short_sha(sha: str) -> str:
    return (sha or "")[:12]


@register.filter
def short_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if (ref or "").startswith(prefix):
            return ref[len(prefix) :]
    return ref or ""


_PLAIN = {
    "CREATED": "created",
    "PLANNING": "planning",
    "PLAN_FAILED": "planning failed",
    "QUEUED": "queued",
    "PENDING": "waiting",
    "RUNNING": "running",
    "LEASED": "handed to a runner",
    "STARTING": "starting",
    "UPLOADING": "uploading",
    "CANCEL_REQUESTED": "cancelling",
    "SUCCESS": "succeeded",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "TIMED_OUT": "timed out",
    "TIMEOUT": "timed out",
    "CANCELED": "cancelled",
    "SKIPPED": "skipped",
    "STALE": "lost (runner stopped answering)",
}


@register.filter
def plain_state(state: str) -> str:
    """A state in plain words (the code itself goes in a title)."""
    return _PLAIN.get(state, (state or "").replace("_", " ").lower())


_CODES = {
    "FILE_CHANGED": "files changed",
    "DEPENDENCY_CHANGED": "a dependency changed",
    "GLOBAL_FILE_CHANGED": "a global file changed",
    "UNKNOWN_IMPACT": "impact unknown",
    "DIFF_UNAVAILABLE": "no diff",
    "MANIFEST_UNREADABLE": "build file unreadable",
    "PATHS_MATCHED": "paths matched",
    "ALWAYS": "runs on every change",
    "REQUIRED_BY_POLICY": "required by policy",
    "POLICY_FULL": "full planning",
    "NEEDED_BY": "needed by a job that runs",
    "NOT_AFFECTED": "not affected",
    "DOCS_ONLY": "docs only",
    "PATHS_NOT_MATCHED": "paths not matched",
    "NEED_FAILED": "a job it needs failed",
    "RERUN_FAILED": "rerun: did not succeed before",
    "SUCCEEDED_BEFORE": "succeeded before",
    "RUN_CANCELED": "the run was cancelled",
    "JOB_CANCELED": "the job was cancelled",
    "TIMEOUT": "time limit reached",
    "SUPERSEDED": "superseded by a newer run",
    "push": "push",
    "pull_request": "pull request",
    "manual": "manual",
    "rerun": "rerun",
    "api": "API",
}


@register.filter
def plain_code(code: str) -> str:
    """A reason or cancel code in plain words (pages show the code on hover)."""
    return _CODES.get(code, (code or "").replace("_", " ").lower())
