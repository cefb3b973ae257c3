"""Thin Celery wrappers for artifact work done after commit, and the daily retention."""

from celery import current_app, shared_task
from django.conf import settings

from apps.artifacts.logs import finalize
from apps.artifacts.retention import cleanup
from apps.artifacts.testreports import parse_attempt_reports
from lib.dispatch import dispatch


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
    _request_analysis(attempt_id)


def _request_analysis(attempt_id: int) -> None:
    """The advisory AI analysis reads the finalised log and the parsed reports, so it is
    queued here, by task name (the AI app sits above this one). It decides itself whether
    the attempt wants one; a broker that refuses the message loses only the suggestion
    (dispatch logs and counts it)."""
    if settings.DELTACI_AI_URL:
        dispatch(current_app.signature("deltaci.ai_analyse_attempt"), attempt_id)


@shared_task(name="deltaci.reconcile_logs", expires=60)
def reconcile_logs() -> int:
    """Logs of ended attempts that were never finalised (the broker was down when the
    attempt ended, or the worker died) are sent to finalize_log again."""
    from django.utils import timezone

    from apps.artifacts.logs import left_behind
    from lib.dispatch import dispatch

    ids = left_behind(timezone.now())
    return sum(dispatch(finalize_log, pk) for pk in ids)


@shared_task(name="deltaci.cleanup_retention", acks_late=True, expires=3600)
def cleanup_retention() -> dict:
    """The daily beat task: the same code as `manage.py cleanup_retention`."""
    return cleanup(actor="beat").as_dict()
