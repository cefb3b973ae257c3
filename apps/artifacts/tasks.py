"""Thin Celery wrappers for artifact work done after commit, and the daily retention."""

from celery import shared_task

from apps.artifacts.logs import finalize
from apps.artifacts.retention import cleanup
from apps.artifacts.testreports import parse_attempt_reports


@shared_task(
    name="deltaci.finalize_log",
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def finalize_log(attempt_id: int) -> None:
    """Called after every attempt ends: the log goes into the store, then the attempt's
    JUnit reports are parsed (each at most once, so a retry of this task is harmless)."""
    finalize(attempt_id)
    parse_attempt_reports(attempt_id)


@shared_task(name="deltaci.cleanup_retention", acks_late=True, expires=3600)
def cleanup_retention() -> dict:
    """The daily beat task: the same code as `manage.py cleanup_retention`."""
    return cleanup(actor="beat").as_dict()
