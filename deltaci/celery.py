"""The Celery app. Tasks are discovered from each app's tasks.py; the beat schedule is
in deltaci/schedule.py so there is one place to read it."""

import os

from celery import Celery

from lib.logging import install_celery_hooks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deltaci.settings")

app = Celery("deltaci")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
install_celery_hooks()  # JSON logs via settings.LOGGING; task lines carry run/job ids


@app.on_after_finalize.connect
def _install_schedule(sender: Celery, **kwargs: object) -> None:
    from deltaci.schedule import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE
