"""Thin Celery wrapper around the supervisor's one pass."""

from celery import shared_task

from apps.runners.supervisor import supervise_once


@shared_task(name="deltaci.supervise", expires=10, ignore_result=True)
def supervise() -> dict:
    return supervise_once()
