"""Redis down (issue 13, item 11): every message whose transaction committed still
answers success, the unsent task is logged and counted, and the reconcilers finalise the
logs and plan the runs that were left behind once the broker is back."""

import io
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from apps.artifacts.logs import left_behind
from apps.artifacts.models import Artifact
from apps.artifacts.tasks import reconcile_logs
from apps.runners import leasing
from apps.runners.models import Lease
from apps.runs.models import JobAttempt, Run
from apps.runs.tasks import reconcile_planning
from tests.conftest import SHA


def failures(task: str) -> float:
    value = REGISTRY.get_sample_value("deltaci_task_dispatch_failures_total", {"task": task})
    return value or 0.0


@pytest.fixture
def superuser(db):
    user = User.objects.create_superuser("root", password="x")
    client = APIClient()
    client.force_authenticate(user)
    return client


def running(proto, make_run) -> tuple[str, JobAttempt]:
    make_run()
    lid = proto.start()["lease_id"]
    assert proto.log(lid, 0, b"hello\n").status_code == 200
    return lid, JobAttempt.objects.get()


def test_it_answers_complete_and_finalises_the_log_later(
    proto, make_run, store, broker_down, django_capture_on_commit_callbacks, caplog
):
    lid, attempt = running(proto, make_run)
    before = failures("deltaci.finalize_log")
    with django_capture_on_commit_callbacks(execute=True):
        r = proto.complete(lid)
    assert r.status_code == 200, r.content
    attempt.refresh_from_db()
    assert attempt.state == "SUCCEEDED"
    assert failures("deltaci.finalize_log") == before + 1
    assert "could not send task deltaci.finalize_log" in caplog.text
    assert not Artifact.objects.filter(name="log.txt").exists()

    broker_down()  # Redis is back
    assert reconcile_logs() == 0  # too recent: the after-commit task may still be on its way
    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False):
        assert reconcile_logs() == 1
        assert left_behind(timezone.now()) == []
    art = Artifact.objects.get(name="log.txt")
    assert (store / art.key).read_bytes() == b"hello\n"


def test_it_answers_cancel_ack_and_revoke(
    proto, make_run, store, broker_down, django_capture_on_commit_callbacks
):
    from apps.runs.cancelling import do_cancel_run

    lid, attempt = running(proto, make_run)
    with django_capture_on_commit_callbacks(execute=True):
        do_cancel_run(attempt.run, actor="test")
    with django_capture_on_commit_callbacks(execute=True):
        r = proto.cancel_ack(lid)
    assert r.status_code == 200, r.content
    attempt.refresh_from_db()
    assert attempt.state == "CANCELED"

    make_run()
    other = proto.start()["lease_id"]
    lease = Lease.objects.get(state="ACTIVE")
    with django_capture_on_commit_callbacks(execute=True):
        assert leasing.revoke(lease, actor="operator") is True
    assert other and Lease.objects.get(pk=lease.pk).state == "REVOKED"
    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False):
        assert len(left_behind(timezone.now())) == 2


def test_the_run_api_creates_the_run_once_and_it_is_planned_later(
    superuser, repo, broker_down, django_capture_on_commit_callbacks
):
    before = failures("deltaci.plan_run")
    with django_capture_on_commit_callbacks(execute=True):
        r = superuser.post(
            "/api/v1/runs", {"repo": "demo", "ref": "main", "commit_sha": SHA}, format="json"
        )
    assert r.status_code == 201, r.content
    assert Run.objects.get().state == "CREATED"
    assert failures("deltaci.plan_run") == before + 1

    broker_down()
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        assert reconcile_planning() == 1
    # The repository URL does not exist: planning ran and failed the run, visibly.
    assert Run.objects.get().state == "FAILED"


def test_trigger_run_prints_the_run_it_created(
    repo, broker_down, django_capture_on_commit_callbacks
):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("trigger_run", "demo", "--ref", "main", "--sha", SHA, stdout=out)
    run = Run.objects.get()
    assert out.getvalue().strip().splitlines()[-1] == str(run.pk)
    assert run.state == "CREATED"


def test_left_behind_skips_finalised_recent_and_never_leased_attempts(
    proto, make_run, store, django_capture_on_commit_callbacks
):
    lid, attempt = running(proto, make_run)
    with django_capture_on_commit_callbacks(execute=True):
        proto.complete(lid)  # eager: finalised at once
    make_run()  # queued, never leased
    later = timezone.now() + timedelta(minutes=3)
    assert Artifact.objects.filter(name="log.txt").count() == 1
    assert left_behind(later) == []
    assert left_behind(timezone.now() + timedelta(days=2)) == []  # beyond the horizon


@pytest.mark.parametrize(("seconds", "ok"), [(1800, True), (901, True), (900, False), (60, False)])
def test_a_visibility_timeout_shorter_than_a_task_is_refused(settings, seconds, ok):
    from apps.ops.checks import check_broker_settings

    settings.DELTACI_BROKER_VISIBILITY_TIMEOUT_SECONDS = seconds
    assert (check_broker_settings(None) == []) is ok


def test_a_redis_broker_gets_the_visibility_timeout_and_bounded_sends(tmp_path):
    import json
    import os
    import subprocess
    import sys

    show = (
        "import json, deltaci.settings as s; print(json.dumps([s.CELERY_BROKER_TRANSPORT_OPTIONS,"
        " s.CELERY_TASK_PUBLISH_RETRY_POLICY]))"
    )
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "DELTACI_BROKER_VISIBILITY_TIMEOUT_SECONDS": "2400",
        "DELTACI_DATA_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True
    )
    transport, retry = json.loads(out.stdout)
    assert transport["visibility_timeout"] == 2400
    assert transport["socket_connect_timeout"] <= 5
    assert retry["max_retries"] <= 3
