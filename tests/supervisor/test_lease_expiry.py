"""Ack timeout and TTL expiry, driven by supervise_once(now) with the clock injected:
the lease EXPIRED, the attempt STALE, and attempt 2 queued as an infra retry until the
budget is spent; a heartbeat that lands first always wins."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.runners import supervisor
from apps.runners.models import Lease
from apps.runners.supervisor import supervise_once
from apps.runs.models import Job, JobAttempt, Run
from tests.conftest import job_spec
from tests.protocol.proto import snapshot, stale_body

T0 = "2026-01-04T08:00:00Z"


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


def attempts() -> list[tuple[int, str, bool]]:
    return list(
        JobAttempt.objects.order_by("attempt_number").values_list(
            "attempt_number", "state", "infra_retry"
        )
    )


def test_an_unacknowledged_lease_expires_after_the_ack_timeout(make_run, proto, clock, settings):
    make_run()
    g = proto.take()
    clock.shift(timedelta(seconds=settings.DELTACI_ACK_TIMEOUT_SECONDS - 1))
    assert supervise_once()["leases_expired"] == 0
    clock.shift(timedelta(seconds=1))
    assert supervise_once()["leases_expired"] == 1
    lease = Lease.objects.get(attempt__attempt_number=1)
    assert lease.state == "EXPIRED" and lease.ended_at is not None
    assert attempts() == [(1, "STALE", False), (2, "QUEUED", True)]
    stale = JobAttempt.objects.get(attempt_number=1)
    assert stale.failure_class == "infrastructure" and "ack timeout" in stale.failure_detail
    ev = AuditEvent.objects.get(action="lease.expire")
    assert ev.details["why"] == "ack timeout" and ev.target == lease.lease_prefix
    assert proto.ack(g["lease_id"]).json() == stale_body(g["lease_id"], "LEASE_EXPIRED")
    g2 = proto.take()
    assert g2["attempt_number"] == 2 and g2["lease_id"] != g["lease_id"]
    assert Job.objects.get().state == "RUNNING"


def test_a_silent_runner_loses_its_lease_after_the_ttl(make_run, proto, clock):
    make_run()
    g = proto.start()
    ttl = g["lease_ttl_seconds"]
    clock.shift(timedelta(seconds=ttl - 1))
    assert supervise_once()["leases_expired"] == 0
    clock.shift(timedelta(seconds=1))
    assert supervise_once()["leases_expired"] == 1
    assert attempts() == [(1, "STALE", False), (2, "QUEUED", True)]
    before = snapshot()
    assert proto.complete(g["lease_id"]).json() == stale_body(g["lease_id"], "LEASE_EXPIRED")
    assert snapshot() == before


def test_heartbeats_keep_a_lease_alive(make_run, proto, clock):
    make_run()
    g = proto.start()
    for _ in range(10):
        clock.shift(timedelta(seconds=g["heartbeat_interval_seconds"]))
        assert proto.heartbeat(g["lease_id"]).status_code == 200
        assert supervise_once()["leases_expired"] == 0
    assert Lease.objects.get().state == "ACTIVE"


def test_a_heartbeat_renewal_between_scan_and_lock_wins(make_run, proto, clock, monkeypatch):
    make_run()
    g = proto.start()
    clock.shift(timedelta(seconds=g["lease_ttl_seconds"] + 1))
    real_lock = supervisor.leasing.lock_lease

    def renew_first(pk):  # the runner's heartbeat commits just before the supervisor locks
        Lease.objects.filter(pk=pk).update(expires_at=timezone.now() + timedelta(seconds=60))
        return real_lock(pk)

    monkeypatch.setattr(supervisor.leasing, "lock_lease", renew_first)
    assert supervisor.expire_leases() == 0
    assert Lease.objects.get().state == "ACTIVE" and attempts() == [(1, "RUNNING", False)]


def test_the_infra_budget_ends_in_a_failed_job(make_run, proto, clock, settings):
    settings.DELTACI_INFRA_RETRY_BUDGET = 2
    run = make_run([job_spec("a"), job_spec("b", needs=["a"])])
    for n in (1, 2, 3):
        g = proto.take()
        assert g["attempt_number"] == n
        clock.shift(timedelta(seconds=settings.DELTACI_ACK_TIMEOUT_SECONDS + 1))
        supervise_once()
    assert attempts() == [(1, "STALE", False), (2, "STALE", True), (3, "STALE", True)]
    run.refresh_from_db()
    jobs = dict(run.jobs.values_list("name", "state"))
    assert jobs == {"a": "FAILED", "b": "SKIPPED"} and run.state == "FAILED"
    assert "a" in run.reason
    assert AuditEvent.objects.filter(action="lease.expire").count() == 3
    assert proto.lease().status_code == 204


def test_a_zero_infra_budget_fails_at_once(make_run, proto, clock, repo):
    from apps.policies.models import Policy

    Policy.objects.filter(repository=repo).update(infra_retry_budget=0)
    run = make_run()
    proto.take()
    clock.shift(timedelta(hours=1))
    supervise_once()
    assert attempts() == [(1, "STALE", False)]
    assert Run.objects.get(pk=run.pk).state == "FAILED"


def test_expiry_is_idempotent(make_run, proto, clock):
    make_run()
    proto.take()
    clock.shift(timedelta(hours=1))
    supervise_once()
    before = snapshot()
    assert supervise_once() == {
        "leases_expired": 0,
        "job_timeouts": 0,
        "forced_cancels": 0,
        "run_timeouts": 0,
        "planning_failed": 0,
        "planning_replanned": 0,
        "runs_superseded": 0,
        "runs_advanced": 0,
    }
    assert snapshot() == before


def test_an_expired_lease_during_a_cancel_finishes_the_cancel(make_run, proto, clock):
    from apps.runs.cancelling import do_cancel_run

    run = make_run()
    g = proto.start()
    do_cancel_run(run, actor="user:op")
    clock.shift(timedelta(seconds=g["lease_ttl_seconds"] + 1))
    supervise_once()
    assert attempts() == [(1, "CANCELED", False)]
    assert Lease.objects.get().state == "EXPIRED"
    assert Run.objects.get(pk=run.pk).state == "CANCELED"
