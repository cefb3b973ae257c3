"""Job timeout (cancel with reason TIMEOUT, TIMED_OUT after CancelAck or the deadline),
forced cancels (attempt CANCELED, lease REVOKED, audited), run timeout and planning
timeout — all with the clock injected."""

from datetime import timedelta

import pytest

from apps.audit.models import AuditEvent
from apps.runners.models import Lease
from apps.runners.supervisor import supervise_once
from apps.runs import states
from apps.runs.cancelling import do_cancel_run
from apps.runs.models import Job, JobAttempt, Run
from tests.conftest import SHA, job_spec
from tests.protocol.proto import stale_body

T0 = "2026-01-04T08:00:00Z"


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def no_retry(settings):
    settings.DELTACI_INFRA_RETRY_BUDGET = 0


def keep_alive(proto, lid, clock, seconds: int, step: int = 20) -> None:
    for _ in range(seconds // step):
        clock.shift(timedelta(seconds=step))
        assert proto.heartbeat(lid).status_code == 200
        supervise_once()


def test_a_job_timeout_asks_the_runner_to_stop_and_ends_timed_out_on_cancel_ack(
    make_run, proto, clock, no_retry
):
    run = make_run([job_spec("slow", timeout_seconds=60)])
    g = proto.start()
    assert g["max_runtime_seconds"] == 60
    keep_alive(proto, g["lease_id"], clock, 60)
    attempt = JobAttempt.objects.get()
    assert attempt.state == "CANCEL_REQUESTED" and attempt.cancel_reason == "TIMEOUT"
    hb = proto.heartbeat(g["lease_id"]).json()
    assert hb["cancel_requested"] is True and hb["cancel_reason"] == "TIMEOUT"
    assert AuditEvent.objects.filter(action="attempt.timeout", target="slow").exists()
    assert proto.cancel_ack(g["lease_id"]).status_code == 200
    attempt.refresh_from_db()
    assert attempt.state == "TIMED_OUT" and attempt.failure_class == "infrastructure"
    assert Lease.objects.get().state == "CANCELED"
    assert Job.objects.get().state == "TIMED_OUT"
    assert Run.objects.get(pk=run.pk).state == "FAILED"


def test_a_job_timeout_without_cancel_ack_is_forced_at_the_deadline(
    make_run, proto, clock, no_retry, settings
):
    make_run([job_spec("slow", timeout_seconds=60)])
    g = proto.start()
    keep_alive(proto, g["lease_id"], clock, 60)
    assert JobAttempt.objects.get().state == "CANCEL_REQUESTED"
    clock.shift(timedelta(seconds=settings.DELTACI_CANCEL_DEADLINE_SECONDS - 1))
    assert supervise_once()["forced_cancels"] == 0
    clock.shift(timedelta(seconds=1))
    assert supervise_once()["forced_cancels"] == 1
    attempt = JobAttempt.objects.get()
    assert attempt.state == "TIMED_OUT" and Lease.objects.get().state == "REVOKED"
    assert Job.objects.get().state == "TIMED_OUT"
    ev = AuditEvent.objects.get(action="attempt.force_cancel")
    assert (
        ev.details["reason"] == "TIMEOUT"
        and ev.details["lease"] == Lease.objects.get().lease_prefix
    )
    assert proto.heartbeat(g["lease_id"]).json() == stale_body(g["lease_id"], "LEASE_REVOKED")


def test_a_timed_out_job_is_retried_within_the_infra_budget(make_run, proto, clock):
    make_run([job_spec("slow", timeout_seconds=60)])
    g = proto.start()
    keep_alive(proto, g["lease_id"], clock, 60)
    proto.cancel_ack(g["lease_id"])
    rows = list(JobAttempt.objects.values_list("attempt_number", "state", "infra_retry"))
    assert rows == [(1, "TIMED_OUT", False), (2, "QUEUED", True)]


def test_the_policy_job_timeout_applies_without_a_job_timeout(make_run, proto, clock, repo):
    from apps.policies.models import Policy

    Policy.objects.filter(repository=repo).update(job_timeout_seconds=100)
    make_run([job_spec("a", timeout_seconds=None)])
    g = proto.start()
    keep_alive(proto, g["lease_id"], clock, 80)
    assert JobAttempt.objects.get().state == "RUNNING"
    keep_alive(proto, g["lease_id"], clock, 20)
    assert JobAttempt.objects.get().state == "CANCEL_REQUESTED"


def test_a_user_cancel_is_forced_at_the_deadline(make_run, proto, clock, settings):
    run = make_run()
    g = proto.start()
    do_cancel_run(run, actor="user:op")
    clock.shift(timedelta(seconds=settings.DELTACI_CANCEL_DEADLINE_SECONDS))
    assert supervise_once()["forced_cancels"] == 1
    lease = Lease.objects.get()
    assert lease.state == "REVOKED" and lease.attempt.state == "CANCELED"
    assert Run.objects.get(pk=run.pk).state == "CANCELED"
    assert AuditEvent.objects.get(action="attempt.force_cancel").details["reason"] == "RUN_CANCELED"
    assert proto.cancel_ack(g["lease_id"]).json() == stale_body(g["lease_id"], "LEASE_REVOKED")


def test_a_cancel_ack_before_the_deadline_wins(make_run, proto, clock, settings):
    run = make_run()
    g = proto.start()
    do_cancel_run(run, actor="user:op")
    clock.shift(timedelta(seconds=settings.DELTACI_CANCEL_DEADLINE_SECONDS - 1))
    assert proto.cancel_ack(g["lease_id"]).status_code == 200
    clock.shift(timedelta(seconds=5))
    assert supervise_once()["forced_cancels"] == 0
    assert not AuditEvent.objects.filter(action="attempt.force_cancel").exists()


def test_a_run_timeout_ends_the_run_and_stops_its_attempts(make_run, proto, clock, settings):
    settings.DELTACI_RUN_TIMEOUT_SECONDS = 600
    run = make_run([job_spec("a"), job_spec("b"), job_spec("c", needs=["a"])])
    g = proto.start()
    keep_alive(proto, g["lease_id"], clock, 580)
    assert Run.objects.get(pk=run.pk).state == "RUNNING"
    keep_alive(proto, g["lease_id"], clock, 20)
    run.refresh_from_db()
    assert run.state == "TIMEOUT" and "600s" in run.reason
    assert AuditEvent.objects.filter(action="run.timeout", run=run).exists()
    jobs = dict(run.jobs.values_list("name", "state"))
    assert jobs["b"] == "CANCELED" and jobs["c"] == "CANCELED" and jobs["a"] == "RUNNING"
    hb = proto.heartbeat(g["lease_id"]).json()
    assert hb["cancel_requested"] and hb["cancel_reason"] == "TIMEOUT"
    assert proto.cancel_ack(g["lease_id"]).status_code == 200
    assert Job.objects.get(name="a").state == "TIMED_OUT"
    assert JobAttempt.objects.filter(job__name="a").count() == 1  # no retry in a finished run
    assert Run.objects.get(pk=run.pk).state == "TIMEOUT"


def test_a_plans_own_run_timeout_wins(make_run, clock):
    run = make_run()
    Run.objects.filter(pk=run.pk).update(plan={"jobs": [], "policies": {"max_runtime_seconds": 30}})
    clock.shift(timedelta(seconds=31))
    assert supervise_once()["run_timeouts"] == 1
    assert Run.objects.get(pk=run.pk).state == "TIMEOUT"


def test_planning_that_takes_too_long_fails_the_run(repo, clock):
    run = Run.objects.create(
        repository=repo, trigger="manual", event_key="k", ref="refs/heads/main", commit_sha=SHA
    )
    clock.shift(timedelta(hours=2))  # waited in CREATED: that is not planning time
    states.transition(states.RUN, run, "PLANNING", actor="system")
    clock.shift(timedelta(minutes=14))
    assert supervise_once()["planning_failed"] == 0
    clock.shift(timedelta(minutes=1))
    assert supervise_once()["planning_failed"] == 1
    run.refresh_from_db()
    assert run.state == "FAILED" and "planning did not finish" in run.plan_error
    assert AuditEvent.objects.filter(action="run.planning_timeout").exists()
