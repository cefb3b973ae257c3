"""Thin Celery wrappers (STYLE habit 6): ids in, one action, stable names."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from apps.runs.choices import RunState
from apps.runs.models import Run
from apps.runs.planning import do_plan_run
from lib.dispatch import dispatch
from lib.logging import bind, unbind

log = logging.getLogger(__name__)


@shared_task(name="deltaci.plan_run", acks_late=True, time_limit=900, soft_time_limit=840)
def plan_run(run_id: int, planning_token: str = "") -> None:
    """acks_late: a worker that dies unacked gets the task back after the broker's
    visibility timeout (harmless: it plans nothing without the current token); the
    planning lease brings the run back much sooner (apps/runs/planlease.py)."""
    token = bind(run_id=run_id)
    try:
        do_plan_run(run_id, planning_token)
    finally:
        unbind(token)


@shared_task(name="deltaci.reconcile_planning", expires=60)
def reconcile_planning() -> int:
    """Runs whose planning task was lost (broker down, worker killed) are dispatched
    again; the database row, not the queue, is the truth (STYLE habit 4)."""
    stale = timezone.now() - timedelta(minutes=1)
    ids = list(
        Run.objects.filter(state=RunState.CREATED, created_at__lt=stale).values_list(
            "pk", flat=True
        )[:100]
    )
    return sum(dispatch(plan_run, run_id) for run_id in ids)
