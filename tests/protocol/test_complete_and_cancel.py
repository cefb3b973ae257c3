"""Complete (accepted once, repeats idempotent, a different one refused) and the two-phase
cancel: CancelAck, and the refusals around a pending cancel."""

from apps.runners.models import Lease
from apps.runs.cancelling import do_cancel_run
from apps.runs.models import Job, JobAttempt, Run
from tests.conftest import job_spec
from tests.protocol.proto import snapshot


def test_complete_ends_the_lease_and_the_attempt(make_run, proto):
    run = make_run()
    g = proto.start()
    r = proto.complete(
        g["lease_id"],
        timings={"started_at": "2026-01-04T08:00:00Z", "finished_at": "2026-01-04T08:01:00Z"},
        caches=[{"type": "deps", "key": "pip:1", "hit": True, "read_only": False}],
        summary="ok",
    )
    assert r.status_code == 200
    assert r.json() == {"type": "CompleteAck", "lease_id": g["lease_id"], "accepted": True}
    lease = Lease.objects.get()
    attempt = lease.attempt
    assert lease.state == "COMPLETED" and lease.ended_at and lease.complete_digest
    assert attempt.state == "SUCCEEDED" and attempt.exit_code == 0 and attempt.summary == "ok"
    assert Run.objects.get(pk=run.pk).state == "SUCCESS"


def test_a_complete_on_a_granted_lease_counts_as_its_ack(make_run, proto):
    make_run()
    g = proto.take()
    assert proto.complete(g["lease_id"], finished_at="2026-01-04T08:01:00Z").status_code == 200
    assert Lease.objects.get().state == "COMPLETED"
    assert JobAttempt.objects.get().state == "SUCCEEDED"


def test_the_same_complete_twice_is_answered_again_and_changes_nothing(make_run, proto):
    make_run()
    g = proto.start()
    first = proto.complete(g["lease_id"], "FAILED", 1, summary="boom")
    before = snapshot()
    again = proto.complete(g["lease_id"], "FAILED", 1, summary="boom", note="ignored extra field")
    assert again.status_code == 200 and again.json() == first.json()
    assert snapshot() == before


def test_a_different_complete_is_refused(make_run, proto):
    make_run()
    g = proto.start()
    proto.complete(g["lease_id"], "FAILED", 1)
    before = snapshot()
    for status, code in (("SUCCEEDED", 0), ("FAILED", 2)):
        r = proto.complete(g["lease_id"], status, code)
        assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
    assert snapshot() == before


def test_cancel_ack_ends_a_pending_cancel(make_run, proto):
    run = make_run([job_spec("a"), job_spec("b")])
    g = proto.start()
    do_cancel_run(run, actor="user:op")
    assert Run.objects.get(pk=run.pk).state == "CANCEL_REQUESTED"
    assert Job.objects.get(name="b").state == "CANCELED"  # never leased: ended at once
    r = proto.cancel_ack(g["lease_id"], ts="2026-01-04T08:00:00Z", summary="stopped")
    assert r.status_code == 200
    assert r.json() == {"type": "CancelAcknowledged", "lease_id": g["lease_id"], "accepted": True}
    lease = Lease.objects.get()
    assert lease.state == "CANCELED" and lease.attempt.state == "CANCELED"
    assert Job.objects.get(name="a").state == "CANCELED"
    assert Run.objects.get(pk=run.pk).state == "CANCELED"


def test_cancel_ack_without_a_pending_cancel_is_refused(make_run, proto):
    make_run()
    g = proto.start()
    before = snapshot()
    r = proto.cancel_ack(g["lease_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
    assert snapshot() == before


def test_complete_while_a_cancel_is_pending_is_refused(make_run, proto):
    run = make_run()
    g = proto.start()
    do_cancel_run(run, actor="user:op")
    before = snapshot()
    r = proto.complete(g["lease_id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
    assert snapshot() == before


def test_a_cancel_before_any_lease_finishes_at_once(make_run, proto):
    run = make_run([job_spec("a"), job_spec("b", needs=["a"])])
    assert do_cancel_run(run, actor="user:op")
    run.refresh_from_db()
    assert run.state == "CANCELED" and run.cancel_reason == "RUN_CANCELED"
    assert set(run.jobs.values_list("state", flat=True)) == {"CANCELED"}
    assert JobAttempt.objects.get().state == "CANCELED"
    assert proto.lease().status_code == 204


def test_cancel_is_idempotent(make_run, proto):
    run = make_run()
    proto.start()
    assert do_cancel_run(run, actor="user:op")
    before = snapshot()
    assert do_cancel_run(run, actor="user:op")
    assert snapshot() == before
