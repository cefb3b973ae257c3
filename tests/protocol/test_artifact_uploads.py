"""Artifact upload requests on the filesystem store: one signed, expiring URL per key in
the attempt's own prefix, size limits, hostile names, and the references a Complete may
(and may not) record."""

import hashlib
from datetime import timedelta

import pytest

from apps.artifacts.models import Artifact
from apps.audit.models import AuditEvent
from apps.policies.models import Policy
from apps.runs.models import JobAttempt
from tests.conftest import job_spec
from tests.protocol.proto import Proto, snapshot


@pytest.fixture
def lid(make_run, proto, store):
    make_run()
    return proto.start()["lease_id"]


def put(proto, answer: dict, data: bytes):
    url = answer["upload"]["url"].split("127.0.0.1:8000", 1)[1]
    return proto.c.generic(
        "PUT", url, data, content_type=answer["upload"]["headers"]["Content-Type"]
    )


def upload(proto, lid: str, name: str, data: bytes, **extra) -> dict:
    r = proto.artifact(lid, name, len(data), sha256=hashlib.sha256(data).hexdigest(), **extra)
    assert r.status_code == 201, r.content
    assert put(proto, r.json(), data).status_code == 200
    return r.json()


def test_it_answers_with_upload_instructions_for_one_key(proto, lid, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    r = proto.artifact(lid, "reports/junit.xml", 10, content_type="application/xml")
    assert r.status_code == 201
    body = r.json()
    attempt = JobAttempt.objects.get()
    prefix = f"runs/{attempt.run_id}/jobs/{attempt.job_id}/attempts/1/"
    assert body["uri"] == f"artifact:{prefix}reports/junit.xml"
    assert body["artifact_id"] == str(Artifact.objects.get().pk)
    up = body["upload"]
    assert up["method"] == "PUT" and up["url"].startswith("http://127.0.0.1:8000/")
    assert up["headers"] == {"Content-Type": "application/xml"}
    assert up["expires_at"] == "2026-01-04T08:15:00Z"


def test_a_completed_upload_is_recorded_by_complete(proto, lid, store):
    answer = upload(proto, lid, "out/result.bin", b"\x00\x01data")
    assert (
        proto.complete(lid, artifacts=[{"type": "file", "uri": answer["uri"]}]).status_code == 200
    )
    art = Artifact.objects.get(name="out/result.bin")
    assert art.recorded and (store / art.key).read_bytes() == b"\x00\x01data"


def test_an_artifact_over_the_policy_limit_is_refused(proto, lid, repo):
    Policy.objects.filter(repository=repo).update(max_artifact_bytes=100)
    r = proto.artifact(lid, "big.bin", 101)
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert r.json()["error"]["details"] == {"limit": 100}
    assert not Artifact.objects.exists()
    assert proto.artifact(lid, "ok.bin", 100).status_code == 201


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/../../x",
        "a/..",
        "..",
        "a..b",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "./a",
        "a/",
        "",
        "x" * 256,
        "a\\b",
        "a b",
        "a\nb",
        "%2e%2e/x",
    ],
)
def test_a_hostile_artifact_name_is_refused(proto, lid, name):
    before = snapshot()
    r = proto.artifact(lid, name, 1)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    assert snapshot() == before and not Artifact.objects.exists()


def test_the_log_name_is_reserved(proto, lid):
    r = proto.artifact(lid, "log.txt", 1)
    assert r.status_code == 400 and "reserved" in r.json()["error"]["message"]


def test_references_outside_the_attempts_prefix_are_audited_and_ignored(
    proto, lid, make_run, runner_factory
):
    other = Proto(runner_factory("other"))
    make_run([job_spec("x")])
    theirs = upload(other, other.take()["lease_id"], "theirs.txt", b"theirs")
    mine = upload(proto, lid, "mine.txt", b"mine")
    not_uploaded = proto.artifact(lid, "never.txt", 5).json()
    prefix = mine["uri"].rsplit("/", 1)[0]
    refs = [
        {"type": "file", "uri": mine["uri"]},
        {"type": "file", "uri": theirs["uri"]},  # another attempt's prefix
        {"type": "file", "uri": prefix + "/unrequested.txt"},  # never requested
        {"type": "file", "uri": not_uploaded["uri"]},  # requested, never uploaded
        {"type": "file", "uri": "s3://elsewhere/x"},
        {"type": "file", "uri": prefix + "/../../../../x"},
        {"type": "file", "uri": "https://evil.example/x"},
    ]
    r = proto.complete(lid, artifacts=refs)
    assert r.status_code == 200  # the completion still counts
    assert JobAttempt.objects.filter(state="SUCCEEDED").count() == 1
    recorded = set(Artifact.objects.filter(recorded=True).values_list("name", flat=True))
    assert recorded == {"mine.txt"}
    rejected = AuditEvent.objects.filter(action="artifact.rejected")
    assert rejected.count() == 6
    assert {e.target for e in rejected} == {ref["uri"] for ref in refs[1:]}


def test_an_upload_url_writes_only_its_own_key_and_expires(proto, lid, store, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    answer = proto.artifact(lid, "a.txt", 3).json()
    assert put(proto, answer, b"toolong").status_code == 413
    tampered = dict(
        answer, upload={**answer["upload"], "url": answer["upload"]["url"][:-3] + "AAA"}
    )
    assert put(proto, tampered, b"abc").status_code == 403
    time_machine.shift(timedelta(minutes=15, seconds=1))
    assert put(proto, answer, b"abc").status_code == 403
    assert not any(store.rglob("a.txt"))


def test_a_checksum_mismatch_is_refused(proto, lid):
    answer = proto.artifact(lid, "a.txt", 3, sha256=hashlib.sha256(b"abc").hexdigest()).json()
    assert put(proto, answer, b"abd").status_code == 400


def test_cancel_ack_may_record_artifacts(proto, lid):
    from apps.runs.cancelling import do_cancel_run

    answer = upload(proto, lid, "partial.txt", b"partial")
    do_cancel_run(JobAttempt.objects.get().run, actor="user:op")
    assert (
        proto.cancel_ack(lid, artifacts=[{"type": "file", "uri": answer["uri"]}]).status_code == 200
    )
    assert Artifact.objects.get(name="partial.txt").recorded


def test_an_upload_url_ends_with_its_attempt(proto, lid, store):
    """A URL still within its 15 minutes cannot overwrite a finished artifact (no sha256
    declared, the case that once let it), nor write one after the attempt ended."""
    answer = proto.artifact(lid, "out.txt", 5).json()
    late = proto.artifact(lid, "late.txt", 5).json()
    assert put(proto, answer, b"first").status_code == 200
    assert put(proto, answer, b"again").status_code == 200  # the attempt still runs
    done = proto.complete(lid, artifacts=[{"type": "file", "uri": answer["uri"]}])
    assert done.status_code == 200
    art = Artifact.objects.get(name="out.txt")
    r = put(proto, answer, b"evil!")
    assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
    r = put(proto, late, b"late!")
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    assert (store / art.key).read_bytes() == b"again"
    assert not any(store.rglob("late.txt"))


def test_an_upload_url_ends_when_the_lease_expires(proto, lid, store, time_machine):
    from django.utils import timezone

    answer = proto.artifact(lid, "a.txt", 3).json()
    # The URL is valid for 15 minutes; the lease (TTL 120 s, no heartbeat) is not.
    time_machine.move_to(timezone.now() + timedelta(minutes=10), tick=False)
    r = put(proto, answer, b"abc")
    assert r.status_code == 403 and "ended with its attempt" in r.json()["error"]["message"]
    assert not any(store.rglob("a.txt"))
