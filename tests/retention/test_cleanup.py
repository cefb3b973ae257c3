"""Retention: logs and artifacts older than each repository's policy are deleted —
objects first, then rows — in bounded batches, idempotently; run and job metadata stay;
every real cleanup is audited; the command and the beat task run the same code."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.artifacts import retention, storage
from apps.artifacts.models import Artifact, LogChunk, TestResult
from apps.artifacts.retention import cleanup
from apps.audit.models import AuditEvent
from apps.policies.models import Policy
from apps.runs.actions import do_add_repository
from apps.runs.models import Job, JobAttempt, Run
from deltaci.celery import app as celery_app
from tests.conftest import job_spec
from tests.pages.factory import JUNIT_FAIL, lease, run_attempt, send_log

T0 = timezone.now().replace(microsecond=0)


def day(n: int):
    return T0 + timedelta(days=n)


def exists(art: Artifact) -> bool:
    return storage.size_of(art.key) is not None


@pytest.fixture
def history(repo, make_run, runner, artifact_store):
    """Day 0: a run with a log, a JUnit report and a file. Day 20: another one.
    The policy keeps logs 7 days and artifacts 30 days."""
    Policy.objects.filter(repository=repo).update(log_retention_days=7, artifact_retention_days=30)
    made = {}
    for when in (0, 20):
        with time_machine.travel(day(when), tick=False):
            run = make_run([job_spec("build")])
            g = run_attempt(runner, junit=JUNIT_FAIL, files={"out.bin": b"x" * 100})
            made[when] = (run, int(g["attempt_id"]))
    return made


def arts(attempt_id: int) -> dict[str, Artifact]:
    return {a.artifact_type: a for a in Artifact.objects.filter(attempt_id=attempt_id)}


def test_it_deletes_what_the_policy_expired_and_keeps_the_rest(history):
    old, new = history[0][1], history[20][1]
    report = cleanup(now=day(25))
    assert (report.total("logs"), report.total("artifacts")) == (1, 0)
    o, n = arts(old), arts(new)
    assert o["log"].deleted_at == day(25) and not exists(o["log"])
    assert o["junit"].deleted_at is None and exists(o["junit"])
    assert n["log"].deleted_at is None and exists(n["log"])
    report = cleanup(now=day(31))  # day 20's log is now 11 days old too
    assert (report.total("logs"), report.total("artifacts")) == (1, 2)
    o, n = arts(old), arts(new)
    assert o["junit"].deleted_at and o["file"].deleted_at and not exists(o["file"])
    assert n["log"].deleted_at and n["junit"].deleted_at is None and exists(n["junit"])
    assert report.total("bytes") == o["junit"].size + 100 + n["log"].size
    # metadata stays: the run, its jobs, attempts and parsed test results
    assert Run.objects.count() == 2 and Job.objects.count() == 2
    assert JobAttempt.objects.get(pk=old).log_size > 0
    assert TestResult.objects.filter(attempt_id=old).count() == 3


def test_it_is_idempotent_and_finishes_an_interrupted_cleanup(history, monkeypatch):
    old = history[0][1]
    o = arts(old)
    storage.delete(o["log"].key)  # interrupted after the object went, before the row
    assert o["log"].deleted_at is None
    assert cleanup(now=day(25)).total("logs") == 1
    assert arts(old)["log"].deleted_at == day(25)
    again = cleanup(now=day(26))
    assert again.total("logs") == 0 and again.total("artifacts") == 0
    assert arts(old)["log"].deleted_at == day(25)


def test_it_works_in_bounded_batches(repo, make_run, runner, artifact_store, monkeypatch):
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    with time_machine.travel(day(0), tick=False):
        make_run()
        g = run_attempt(runner, files={f"f{i}": b"x" for i in range(5)})
    seen = []
    real = Artifact.objects.filter

    def spy(*args, **kwargs):
        seen.append(kwargs.get("pk__in"))
        return real(*args, **kwargs)

    monkeypatch.setattr(Artifact.objects, "filter", spy)
    assert cleanup(now=day(400)).total("artifacts") == 5
    batches = [ids for ids in seen if ids is not None]
    assert [len(b) for b in batches] == [1, 2, 2, 1]  # the log, then files in twos
    monkeypatch.undo()
    assert all(a.deleted_at for a in Artifact.objects.filter(attempt_id=g["attempt_id"]))


def test_it_keeps_a_row_whose_object_could_not_be_deleted(history, monkeypatch):
    old = history[0][1]

    def broken(key):
        raise OSError("store down")

    monkeypatch.setattr(storage, "delete", broken)
    report = cleanup(now=day(25))
    assert report.total("logs") == 0 and report.total("failed") == 1
    assert arts(old)["log"].deleted_at is None
    assert "1 object(s) could not be deleted" in report.lines()[0]


def test_it_counts_without_deleting_in_a_dry_run(history):
    report = cleanup(now=day(31), dry_run=True)
    assert (report.total("logs"), report.total("artifacts")) == (2, 2)
    assert report.lines()[-1].startswith("total: would delete 2 log(s), 0 log chunk(s), 2 art")
    assert not Artifact.objects.filter(deleted_at__isnull=False).exists()
    assert all(exists(a) for a in Artifact.objects.all())
    assert not AuditEvent.objects.filter(action__startswith="retention").exists()


def test_it_audits_every_real_cleanup_with_counts(history):
    repo = history[0][0].repository
    cleanup(now=day(25), actor="user:olga")
    per_repo = AuditEvent.objects.get(action="retention.cleanup")
    assert per_repo.repository == repo and per_repo.actor == "user:olga"
    assert per_repo.details["logs"] == 1 and per_repo.details["artifacts"] == 0
    assert per_repo.details["log_retention_days"] == 7
    summary = AuditEvent.objects.get(action="retention.run")
    assert summary.details["logs"] == 1 and summary.details["repositories"] == 1
    cleanup(now=day(25))  # nothing left: a summary event, no per-repository one
    assert AuditEvent.objects.filter(action="retention.run").count() == 2
    assert AuditEvent.objects.filter(action="retention.cleanup").count() == 1


def test_it_deletes_leftover_chunks_of_finished_attempts_only(repo, make_run, runner):
    Policy.objects.filter(repository=repo).update(log_retention_days=1)
    with time_machine.travel(day(0), tick=False):
        make_run([job_spec("a"), job_spec("b")])
        done = lease(runner)
        send_log(runner, done["lease_id"], b"finished but never finalised\n")
        runner.client.post(
            "/api/v1/internal/complete",
            {"lease_id": done["lease_id"], "status": "SUCCEEDED", "exit_code": 0},
            format="json",
        )
        live = lease(runner)
        send_log(runner, live["lease_id"], b"still running\n")
    assert LogChunk.objects.count() == 2
    report = cleanup(now=day(5))
    assert report.total("log_chunks") == 1
    assert list(LogChunk.objects.values_list("attempt_id", flat=True)) == [int(live["attempt_id"])]


def test_it_applies_each_repository_its_own_policy(history):
    other = do_add_repository("other", "/x.git", actor="system")
    Policy.objects.filter(repository=other).update(log_retention_days=60)
    Run.objects.filter(repository=history[0][0].repository).update(repository=other)
    report = cleanup(now=day(25))
    assert report.total("logs") == 0  # both runs now belong to the 60-day repository
    Policy.objects.filter(repository=other).update(log_retention_days=10)  # policy changed
    assert cleanup(now=day(25)).total("logs") == 1


def test_the_command_prints_what_it_deletes_and_can_be_limited(history):
    do_add_repository("other", "/x.git", actor="system")
    out = StringIO()
    call_command("cleanup_retention", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "demo: would delete 1 log(s)" not in text  # nothing is old enough yet today
    with time_machine.travel(day(31), tick=False):
        out = StringIO()
        call_command("cleanup_retention", "--dry-run", "--repo", "demo", stdout=out)
        o, n = arts(history[0][1]), arts(history[20][1])
        size = o["junit"].size + 100 + o["log"].size + n["log"].size
        assert out.getvalue().splitlines() == [
            f"demo: would delete 2 log(s), 0 log chunk(s), 2 artifact(s), {size} bytes",
            f"total: would delete 2 log(s), 0 log chunk(s), 2 artifact(s), {size} bytes",
        ]
        assert "other" not in out.getvalue()
        out = StringIO()
        call_command("cleanup_retention", stdout=out)
        assert "demo: deleted 2 log(s), 0 log chunk(s), 2 artifact(s)" in out.getvalue()
        assert "other: deleted 0 log(s)" in out.getvalue()
    assert AuditEvent.objects.get(action="retention.run").actor == "manage.py"


@pytest.mark.parametrize("name", ["missing", "x" * 5000, "../demo", ""])
def test_the_command_refuses_an_unknown_repository(history, name):
    with pytest.raises(CommandError, match="no repository named"):
        call_command("cleanup_retention", "--repo", name)


def test_the_daily_beat_task_runs_the_same_cleanup(history, settings):
    from deltaci.schedule import BEAT_SCHEDULE

    entry = next(e for e in BEAT_SCHEDULE.values() if e["task"] == "deltaci.cleanup_retention")
    assert entry["options"]["expires"]
    task = celery_app.tasks["deltaci.cleanup_retention"]
    with time_machine.travel(day(31), tick=False):
        result = task.apply().get()
    assert result["logs"] == 2 and result["artifacts"] == 2 and result["dry_run"] is False
    assert AuditEvent.objects.get(action="retention.run").actor == "beat"
