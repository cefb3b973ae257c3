"""`manage.py supervise --once` and the beat task run the same pass."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from apps.runners.models import Lease
from apps.runners.tasks import supervise
from deltaci.schedule import BEAT_SCHEDULE


def test_the_command_runs_one_pass_and_reports_it(make_run, proto, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    make_run()
    proto.take()
    time_machine.shift(timedelta(hours=1))
    out = io.StringIO()
    call_command("supervise", "--once", stdout=out)
    assert "leases_expired=1" in out.getvalue()
    assert Lease.objects.get().state == "EXPIRED"


def test_the_command_refuses_a_bad_interval(db):
    with pytest.raises(CommandError):
        call_command("supervise", "--once", "--interval", "soon")


def test_the_beat_task_runs_the_pass(make_run, proto, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    make_run()
    proto.take()
    time_machine.shift(timedelta(hours=1))
    assert supervise.apply().get()["leases_expired"] == 1
    assert BEAT_SCHEDULE["supervise"]["task"] == supervise.name
