"""Every lease-scoped endpoint answers an expired, revoked, ended or unknown lease with
the exact StaleLease body and changes nothing; another runner's lease is answered
exactly like an unknown one."""

from datetime import timedelta

import pytest

from apps.runners.actions import do_revoke_lease
from apps.runners.models import Lease
from apps.runs.cancelling import do_cancel_run
from tests.conftest import job_spec
from tests.protocol.proto import Proto, snapshot, stale_body

ENDPOINTS = {
    "ack": lambda p, lid: p.ack(lid),
    "heartbeat": lambda p, lid: p.heartbeat(lid, progress={"percent": 5}),
    "complete": lambda p, lid: p.complete(lid, "FAILED", 1),
    "cancel-ack": lambda p, lid: p.cancel_ack(lid),
    "log": lambda p, lid: p.log(lid, 0, b"x"),
    "artifacts": lambda p, lid: p.artifact(lid, "a.txt", 1),
}


def assert_stale(proto, lid: str, reason: str) -> None:
    before = snapshot()
    for name, call in ENDPOINTS.items():
        r = call(proto, lid)
        assert r.status_code == 409, (name, r.status_code, r.content)
        assert r.json() == stale_body(lid, reason), name
        assert snapshot() == before, name


@pytest.fixture
def granted(make_run, proto, store):
    make_run([job_spec("a")])
    return proto.take()


def test_an_unknown_lease_is_stale(granted, proto):
    assert_stale(proto, "no-such-lease", "UNKNOWN_LEASE")
    assert_stale(proto, granted["lease_id"] + "x", "UNKNOWN_LEASE")


def test_another_runners_lease_is_answered_like_an_unknown_one(granted, runner_factory):
    thief = Proto(runner_factory("thief"))
    assert_stale(thief, granted["lease_id"], "UNKNOWN_LEASE")
    unknown = thief.heartbeat("no-such-lease").json()
    theirs = thief.heartbeat(granted["lease_id"]).json()
    unknown.pop("lease_id"), theirs.pop("lease_id")
    assert unknown == theirs


def test_a_lease_past_its_ack_deadline_is_expired_before_the_supervisor_runs(
    granted, proto, time_machine, settings
):
    time_machine.move_to(Lease.objects.get().ack_deadline + timedelta(seconds=1), tick=False)
    assert_stale(proto, granted["lease_id"], "LEASE_EXPIRED")
    assert Lease.objects.get().state == "GRANTED"  # the supervisor records the expiry


def test_a_lease_past_its_ttl_is_expired(granted, proto, time_machine):
    assert proto.ack(granted["lease_id"]).status_code == 200
    time_machine.move_to(Lease.objects.get().expires_at, tick=False)
    assert_stale(proto, granted["lease_id"], "LEASE_EXPIRED")


def test_an_expired_lease_stays_expired(granted, proto, time_machine):
    from apps.runners.supervisor import supervise_once

    assert proto.ack(granted["lease_id"]).status_code == 200
    time_machine.move_to(Lease.objects.get().expires_at + timedelta(seconds=1), tick=False)
    supervise_once()
    assert Lease.objects.get(attempt__attempt_number=1).state == "EXPIRED"
    assert_stale(proto, granted["lease_id"], "LEASE_EXPIRED")


def test_a_revoked_lease_is_stale(granted, proto):
    assert proto.ack(granted["lease_id"]).status_code == 200
    assert do_revoke_lease(Lease.objects.get(), actor="user:op")
    assert_stale(proto, granted["lease_id"], "LEASE_REVOKED")


def test_a_completed_lease_is_ended(granted, proto):
    assert proto.complete(granted["lease_id"]).status_code == 200
    before = snapshot()
    for name in ("ack", "heartbeat", "cancel-ack", "log", "artifacts"):
        r = ENDPOINTS[name](proto, granted["lease_id"])
        assert r.status_code == 409 and r.json() == stale_body(granted["lease_id"], "LEASE_ENDED")
    assert snapshot() == before


def test_a_canceled_lease_is_ended(granted, proto):
    do_cancel_run(Lease.objects.get().attempt.run, actor="user:op")
    assert proto.cancel_ack(granted["lease_id"]).status_code == 200
    assert_stale(proto, granted["lease_id"], "LEASE_ENDED")


def test_an_unacknowledged_lease_can_be_revoked(granted, proto):
    assert do_revoke_lease(Lease.objects.get(), actor="user:op")
    lease = Lease.objects.get(attempt__attempt_number=1)
    assert lease.state == "REVOKED" and lease.attempt.state == "STALE"
    assert_stale(proto, granted["lease_id"], "LEASE_REVOKED")
