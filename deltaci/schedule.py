"""The one beat schedule (STYLE habit 7): short intervals with `expires`, so a backlog
of missed ticks never piles up behind a stopped worker."""

from celery.schedules import crontab
from django.conf import settings

_supervise_every = float(settings.DELTACI_SUPERVISE_INTERVAL_SECONDS)

BEAT_SCHEDULE = {
    "supervise": {
        "task": "deltaci.supervise",
        "schedule": _supervise_every,
        "options": {"expires": _supervise_every},
    },
    "reconcile-planning": {
        "task": "deltaci.reconcile_planning",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "reconcile-logs": {
        "task": "deltaci.reconcile_logs",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "reconcile-reports": {
        "task": "deltaci.reconcile_reports",
        "schedule": 120.0,
        "options": {"expires": 120},
    },
    "refresh-runner-tokens": {
        "task": "deltaci.refresh_runner_tokens",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "cleanup-retention": {
        "task": "deltaci.cleanup_retention",
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 3600},
    },
}
