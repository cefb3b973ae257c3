"""The Celery app. Tasks are discovered from each app's tasks.py; the beat schedule is
in deltaci/schedule.py so there is one place to read it."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deltaci.settings")

app = Celery("deltaci")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_schedule(sender: Celery, **kwargs: object) -> None:
    from deltaci.schedule import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE
