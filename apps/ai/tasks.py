"""Thin Celery wrapper: the analysis runs after the attempt's log is finalised."""

from celery import shared_task

from apps.ai.actions import do_analyse_attempt


@shared_task(name="deltaci.ai_analyse_attempt", acks_late=True, ignore_result=True)
def analyse_attempt(attempt_id: int) -> None:
    """No automatic retry: a failed request is recorded as 'no suggestion' and the
    circuit breaker, not a retry storm, decides when to try the provider again."""
    do_analyse_attempt(attempt_id, actor="system")
