"""Thin Celery wrappers for artifact work done after commit."""

from celery import shared_task


@shared_task(
    name="deltaci.finalize_log",
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def finalize_log(attempt_id: int) -> None:
    from apps.artifacts.logs import finalize

    finalize(attempt_id)
