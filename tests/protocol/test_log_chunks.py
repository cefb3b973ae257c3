"""Log chunks: appended by offset, idempotent, gaps answered 416 with the next offset,
capped by policy with a visible marker, readable live, finalised into the store."""

import pytest

from apps.artifacts import logs
from apps.artifacts.models import Artifact
from apps.policies.models import Policy
from apps.runs.models import JobAttempt
from tests.protocol.proto import snapshot


@pytest.fixture
def lid(make_run, proto, store):
    make_run()
    return proto.start()["lease_id"]


def stored() -> bytes:
    return logs.read(JobAttempt.objects.get())


def test_it_appends_chunks_by_offset_and_reads_them_live(proto, lid):
    r = proto.log(lid, 0, b"hello ")
    assert r.status_code == 200 and r.json() == {"type": "LogAck", "next_offset": 6}
    assert proto.log(lid, 6, b"world\n").json()["next_offset"] == 12
    assert stored() == b"hello world\n"


def test_a_repeated_chunk_is_acknowledged_and_stored_once(proto, lid):
    proto.log(lid, 0, b"abc")
    before = snapshot()
    r = proto.log(lid, 0, b"abc")
    assert r.status_code == 200 and r.json()["next_offset"] == 3
    assert stored() == b"abc" and snapshot() == before


def test_a_partly_overlapping_chunk_adds_only_the_new_bytes(proto, lid):
    proto.log(lid, 0, b"abcd")
    assert proto.log(lid, 2, b"cdef").json()["next_offset"] == 6
    assert stored() == b"abcdef"


def test_a_gap_is_answered_416_with_the_next_offset(proto, lid):
    proto.log(lid, 0, b"abc")
    r = proto.log(lid, 10, b"xyz")
    assert r.status_code == 416
    body = r.json()
    assert body["next_offset"] == 3 and body["error"]["code"] == "RANGE_NOT_SATISFIABLE"
    assert body["error"]["details"] == {"next_offset": 3}
    assert stored() == b"abc"


@pytest.mark.parametrize(
    "content_range",
    ["bytes 0-9/*", "bytes 0-1/*", "bytes=0-2/*", "0-2", "", "bytes 2-0/*", "bytes -1-1/*"],
)
def test_a_content_range_that_does_not_match_the_body_is_refused(proto, lid, content_range):
    before = snapshot()
    r = proto.log(lid, 0, b"abc", content_range=content_range)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    assert snapshot() == before and stored() == b""


def test_an_empty_chunk_is_refused(proto, lid):
    assert proto.log(lid, 0, b"", content_range="bytes 0-0/*").status_code == 400


def test_a_total_length_is_accepted_in_the_content_range(proto, lid):
    assert proto.log(lid, 0, b"abc", content_range="bytes 0-2/3").status_code == 200


def test_the_cap_truncates_with_a_visible_marker(proto, lid, repo):
    Policy.objects.filter(repository=repo).update(max_log_bytes=10)
    assert proto.log(lid, 0, b"0123456789abcdef").json()["next_offset"] == 16
    assert proto.log(lid, 16, b"more").json()["next_offset"] == 20  # acknowledged, not stored
    text = stored()
    assert text.startswith(b"0123456789") and b"log truncated at 10 bytes" in text
    assert b"abcdef" not in text and b"more" not in text
    assert JobAttempt.objects.get().log_truncated


def test_the_log_is_finalised_into_one_artifact_when_the_attempt_ends(
    proto, lid, store, django_capture_on_commit_callbacks
):
    proto.log(lid, 0, b"line 1\n")
    proto.log(lid, 7, b"line 2\n")
    with django_capture_on_commit_callbacks(execute=True):
        assert proto.complete(lid).status_code == 200
    art = Artifact.objects.get(artifact_type="log")
    assert art.recorded and art.key.endswith("/attempts/1/log.txt")
    assert (store / art.key).read_bytes() == b"line 1\nline 2\n"
    assert stored() == b"line 1\nline 2\n"  # read back from the store


def test_chunks_are_accepted_while_a_cancel_is_pending(proto, lid):
    from apps.runs.cancelling import do_cancel_run

    do_cancel_run(JobAttempt.objects.get().run, actor="user:op")
    assert proto.log(lid, 0, b"stopping\n").status_code == 200
