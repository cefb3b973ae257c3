"""AckLease and Heartbeat: GRANTED -> ACTIVE, LEASED -> STARTING -> RUNNING (-> UPLOADING),
duplicates, the TTL renewal, and the cancel fields of HeartbeatAck."""

from datetime import timedelta

from apps.runners.models import Lease
from apps.runs.cancelling import do_cancel_run
from apps.runs.models import JobAttempt, StateEvent
from tests.protocol.proto import snapshot


def states() -> tuple[str, str]:
    lease = Lease.objects.get()
    return lease.state, lease.attempt.state


def test_ack_moves_the_lease_and_the_attempt(make_run, proto):
    make_run()
    g = proto.take()
    r = proto.ack(
        g["lease_id"], job_id=g["job_id"], runner_id="1", accepted_at="2026-01-04T08:00:00Z"
    )
    assert r.status_code == 200
    assert r.json() == {"type": "LeaseAcked", "lease_id": g["lease_id"], "accepted": True}
    assert states() == ("ACTIVE", "STARTING")
    assert Lease.objects.get().acked_at is not None


def test_a_duplicate_ack_is_answered_again_and_changes_nothing(make_run, proto):
    make_run()
    g = proto.take()
    proto.ack(g["lease_id"])
    before = snapshot()
    r = proto.ack(g["lease_id"])
    assert r.status_code == 200 and r.json()["accepted"] is True
    assert snapshot() == before


def test_the_first_heartbeat_starts_the_attempt(make_run, proto):
    make_run()
    g = proto.take()
    proto.ack(g["lease_id"])
    r = proto.heartbeat(g["lease_id"], progress={"percent": 10, "current_step": "pytest"})
    assert r.status_code == 200
    assert r.json() == {
        "type": "HeartbeatAck",
        "lease_id": g["lease_id"],
        "extend_lease": True,
        "new_lease_ttl_seconds": g["lease_ttl_seconds"],
        "cancel_requested": False,
        "cancel_deadline_seconds": 0,
        "cancel_reason": None,
    }
    assert states() == ("ACTIVE", "RUNNING")
    assert JobAttempt.objects.get().progress == {"percent": 10.0, "current_step": "pytest"}


def test_a_heartbeat_on_a_granted_lease_counts_as_its_ack(make_run, proto):
    make_run()
    g = proto.take()
    assert proto.heartbeat(g["lease_id"]).status_code == 200
    assert states() == ("ACTIVE", "RUNNING")
    path = list(StateEvent.objects.filter(kind="attempt").values_list("from_state", "to_state"))
    assert path[-2:] == [("LEASED", "STARTING"), ("STARTING", "RUNNING")]


def test_a_heartbeat_renews_the_ttl(make_run, proto, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    make_run()
    g = proto.take()
    proto.ack(g["lease_id"])
    time_machine.shift(timedelta(seconds=g["lease_ttl_seconds"] - 1))
    assert proto.heartbeat(g["lease_id"]).status_code == 200
    lease = Lease.objects.get()
    assert lease.expires_at.isoformat() == "2026-01-04T08:03:59+00:00"
    assert lease.last_heartbeat_at.isoformat() == "2026-01-04T08:01:59+00:00"
    time_machine.shift(timedelta(seconds=g["lease_ttl_seconds"] - 1))
    assert proto.heartbeat(g["lease_id"]).status_code == 200


def test_steady_heartbeats_write_nothing_but_the_lease(make_run, proto):
    make_run()
    g = proto.start()
    events = StateEvent.objects.count()
    for _ in range(3):
        assert proto.heartbeat(g["lease_id"], progress={"percent": 50}).status_code == 200
    assert StateEvent.objects.count() == events
    assert JobAttempt.objects.get().progress == {"percent": 50.0}


def test_a_heartbeat_reporting_uploads_moves_running_to_uploading(make_run, proto):
    make_run()
    g = proto.start()
    r = proto.heartbeat(g["lease_id"], progress={"message": "uploading artifacts"})
    assert r.status_code == 200 and states() == ("ACTIVE", "UPLOADING")
    assert proto.complete(g["lease_id"]).status_code == 200
    assert states() == ("COMPLETED", "SUCCEEDED")


def test_a_heartbeat_tells_the_runner_about_a_pending_cancel(
    make_run, proto, time_machine, settings
):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    run = make_run()
    g = proto.start()
    do_cancel_run(run, actor="user:op")
    time_machine.shift(timedelta(seconds=10))
    body = proto.heartbeat(g["lease_id"]).json()
    assert body["cancel_requested"] is True and body["cancel_reason"] == "RUN_CANCELED"
    assert body["cancel_deadline_seconds"] == settings.DELTACI_CANCEL_DEADLINE_SECONDS - 10
    assert body["extend_lease"] is True
