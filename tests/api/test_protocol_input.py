"""Hostile and malformed runner messages: size limits (413), strict enums, malformed or
non-object JSON, missing fields (400), unknown extra fields (ignored) — and none of them
changes state or leaks internals."""

import json

import pytest

from tests.conftest import job_spec
from tests.protocol.proto import BASE, snapshot

MESSAGES = {
    "lease": {"type": "LeaseRequest", "wait_seconds": 0},
    "ack-lease": {"type": "AckLease", "lease_id": "L"},
    "heartbeat": {"type": "Heartbeat", "lease_id": "L"},
    "complete": {"type": "Complete", "lease_id": "L", "status": "SUCCEEDED", "exit_code": 0},
    "cancel-ack": {"type": "CancelAck", "lease_id": "L", "final_status": "CANCELED"},
    "artifacts": {
        "type": "ArtifactUploadRequest",
        "lease_id": "L",
        "name": "a.txt",
        "artifact_type": "file",
        "size": 1,
    },
}


@pytest.fixture
def lease_id(make_run, proto):
    make_run([job_spec("a")])
    return proto.take()["lease_id"]


def raw(proto, path: str, body: bytes, content_type: str = "application/json"):
    return proto.c.generic("POST", BASE + path, body, content_type=content_type)


def assert_error(r, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.content)
    body = r.json()
    assert body["error"]["code"] == code and set(body["error"]) == {"code", "message", "details"}
    text = r.content.decode()
    assert "Traceback" not in text and "SELECT" not in text and "django" not in text.lower()


@pytest.mark.parametrize("path", list(MESSAGES))
def test_it_refuses_an_oversized_body(proto, lease_id, settings, path):
    settings.DELTACI_MAX_BODY_BYTES = 1024
    before = snapshot()
    body = {**MESSAGES[path], "lease_id": lease_id, "summary": "x" * 2000}
    assert_error(proto.post(path, body), 413, "PAYLOAD_TOO_LARGE")
    assert snapshot() == before


def test_the_default_body_limit_is_256_kib(proto, lease_id):
    body = {**MESSAGES["heartbeat"], "lease_id": lease_id, "pad": "x" * (256 * 1024)}
    assert_error(proto.post("heartbeat", body), 413, "PAYLOAD_TOO_LARGE")
    body["pad"] = "x" * (255 * 1024)
    assert proto.post("heartbeat", body).status_code == 200


@pytest.mark.parametrize("path", list(MESSAGES))
@pytest.mark.parametrize(
    "body",
    [b"{", b"{'a': 1}", b"\xff\xfe", b"[1, 2]", b'"text"', b"null", b"42", b"[" * 100000],
    ids=["truncated", "single-quotes", "not-utf8", "list", "string", "null", "number", "deep"],
)
def test_it_refuses_malformed_or_non_object_json(proto, lease_id, path, body):
    before = snapshot()
    assert_error(raw(proto, path, body), 400, "INVALID_REQUEST")
    assert snapshot() == before


@pytest.mark.parametrize("path", list(MESSAGES))
def test_it_refuses_a_wrong_content_type(proto, path):
    assert_error(
        raw(proto, path, json.dumps(MESSAGES[path]).encode(), "text/plain"), 400, "INVALID_REQUEST"
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("ack-lease", "lease_id"),
        ("heartbeat", "lease_id"),
        ("complete", "lease_id"),
        ("complete", "status"),
        ("cancel-ack", "lease_id"),
        ("artifacts", "name"),
        ("artifacts", "size"),
        ("artifacts", "artifact_type"),
    ],
)
def test_it_refuses_a_missing_required_field(proto, lease_id, path, field):
    body = {**MESSAGES[path], "lease_id": lease_id}
    body.pop(field)
    before = snapshot()
    r = proto.post(path, body)
    assert_error(r, 400, "INVALID_REQUEST")
    assert field in r.json()["error"]["details"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("complete", "status", "DONE"),
        ("complete", "status", "succeeded"),
        ("complete", "status", "CANCELED"),
        ("cancel-ack", "final_status", "FAILED"),
        ("artifacts", "artifact_type", "binary"),
        ("complete", "type", "Heartbeat"),
        ("heartbeat", "type", "heartbeat"),
        ("complete", "exit_code", "zero"),
        ("complete", "artifacts", [{"type": "tarball", "uri": "artifact:x"}]),
        ("heartbeat", "progress", {"percent": 101}),
        ("lease", "capabilities", "os:linux"),
        ("artifacts", "size", -1),
        ("artifacts", "sha256", "abc"),
        ("artifacts", "content_type", "text/html\r\nX-Evil: 1"),
    ],
)
def test_it_refuses_unknown_enum_values_and_bad_types(proto, lease_id, path, field, value):
    before = snapshot()
    assert_error(
        proto.post(path, {**MESSAGES[path], "lease_id": lease_id, field: value}),
        400,
        "INVALID_REQUEST",
    )
    assert snapshot() == before


def test_it_refuses_an_overlong_lease_id(proto):
    assert_error(proto.heartbeat("x" * 201), 400, "INVALID_REQUEST")


def test_it_ignores_unknown_extra_fields(proto, lease_id):
    extra = {"future_field": {"nested": [1, 2]}, "another": "x"}
    assert (
        proto.post(
            "ack-lease", {**MESSAGES["ack-lease"], "lease_id": lease_id, **extra}
        ).status_code
        == 200
    )
    hb = {
        **MESSAGES["heartbeat"],
        "lease_id": lease_id,
        "progress": {"percent": 1, "eta": 5},
        **extra,
    }
    assert proto.post("heartbeat", hb).status_code == 200
    done = {**MESSAGES["complete"], "lease_id": lease_id, **extra}
    assert proto.post("complete", done).status_code == 200


def test_the_type_field_is_optional(proto, lease_id):
    assert proto.post("ack-lease", {"lease_id": lease_id}).status_code == 200


def test_the_log_chunk_limit_is_separate_and_configurable(proto, lease_id, settings):
    settings.DELTACI_MAX_LOG_CHUNK_BYTES = 1000
    assert_error(proto.log(lease_id, 0, b"x" * 1001), 413, "PAYLOAD_TOO_LARGE")
    assert proto.log(lease_id, 0, b"x" * 1000).status_code == 200


def test_the_default_log_chunk_limit_is_one_mib(proto, lease_id):
    assert_error(proto.log(lease_id, 0, b"x" * (1024 * 1024 + 1)), 413, "PAYLOAD_TOO_LARGE")
    assert proto.log(lease_id, 0, b"x" * (1024 * 1024)).status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_it_refuses_other_methods(proto, method):
    r = getattr(proto.c, method)(BASE + "heartbeat")
    assert r.status_code == 405 and r.json()["error"]["code"] == "INVALID_REQUEST"
