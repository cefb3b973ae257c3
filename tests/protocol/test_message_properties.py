"""Property-based tests (hypothesis) of the runner-protocol messages: any JSON value,
hostile strings and numbers in the known fields, broken bodies, content types and log
headers are answered 2xx/4xx, never 5xx, whether or not the lease is real; and each
message serializer decides any JSON without raising."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.runners.api import serializers as s
from tests.conftest import job_spec
from tests.protocol.proto import BASE

ENDPOINTS = {
    "lease": "LeaseRequest",
    "ack-lease": "AckLease",
    "heartbeat": "Heartbeat",
    "complete": "Complete",
    "cancel-ack": "CancelAck",
    "artifacts": "ArtifactUploadRequest",
}
FIELDS = [
    "type", "lease_id", "runner_id", "status", "exit_code", "final_status", "progress",
    "percent", "step_index", "artifacts", "uri", "caches", "timings", "summary", "name",
    "artifact_type", "size", "sha256", "content_type", "wait_seconds", "capabilities",
    "log_cursor", "ts", "accepted_at", "job_id", "finished_at",
]  # fmt: skip
HOSTILE_TEXT = st.sampled_from(
    ["", "\x00", "../../etc/passwd", "a" * 5000, "😀" * 300, "SUCCEEDED", "CANCELED",
     "s3://x/../y", "deltaci://runs/1/../../2", "\ud800".encode("utf-8", "surrogatepass")
     .decode("utf-8", "replace"), "' OR 1=1 --", "%s%s%n"]
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 10**30]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=50), HOSTILE_TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), inner, max_size=6),
    max_leaves=20,
)
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def message(kind: str, lease_id: str):
    """A message that is mostly right (its type, a real lease) with random fields."""
    base = st.fixed_dictionaries(
        {"type": st.just(ENDPOINTS[kind]), "lease_id": st.sampled_from([lease_id, "nope"])}
    )
    extra = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6)
    return st.builds(lambda b, e: {**b, **e}, base, extra) | JSON


def encode(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@pytest.fixture
def live_lease(make_run, proto):
    make_run([job_spec("build")])
    return proto.start()["lease_id"]


@pytest.mark.parametrize("kind", sorted(ENDPOINTS))
def test_no_message_gets_a_5xx(kind, proto, live_lease):
    @PROPERTY
    @given(body=message(kind, live_lease))
    def check(body):
        r = proto.c.generic("POST", BASE + kind, encode(body), content_type="application/json")
        assert r.status_code < 500, (body, r.content[:300])

    check()


@PROPERTY
@given(
    path=st.sampled_from(sorted(ENDPOINTS)),
    raw=st.binary(max_size=300)
    | st.sampled_from([b"[" * 5000, b'{"a":' * 3000, b"\xff\xfe", b"nan", b"1e999999"]),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/json; charset=latin-1", "", "*/*"]
    ),
)
def test_no_broken_body_gets_a_5xx(proto, path, raw, content_type):
    r = proto.c.generic("POST", BASE + path, raw, content_type=content_type)
    assert r.status_code < 500, (raw[:100], r.content[:300])


@PROPERTY
@given(
    data=st.binary(min_size=0, max_size=64),
    lease=st.sampled_from(["", "nope", "x" * 500, "\x00"]) | st.text(max_size=20),
    content_range=st.text(max_size=40)
    | st.builds(
        lambda a, b, t: f"bytes {a}-{b}/{t}",
        NUMBERS.filter(lambda n: not isinstance(n, float)),
        NUMBERS.filter(lambda n: not isinstance(n, float)),
        st.sampled_from(["*", "0", "99999999999999999"]),
    ),
)
def test_no_log_chunk_gets_a_5xx(proto, live_lease, data, lease, content_range):
    for lid in (lease, live_lease):
        r = proto.c.generic(
            "POST",
            BASE + "log",
            data,
            content_type="application/octet-stream",
            HTTP_X_DELTA_LEASE=lid,
            HTTP_CONTENT_RANGE=content_range,
        )
        assert r.status_code < 500, (lid, content_range, r.content[:300])


SERIALIZERS = [
    s.RegisterSerializer,
    s.LeaseRequestSerializer,
    s.AckSerializer,
    s.HeartbeatSerializer,
    s.CompleteSerializer,
    s.CancelAckSerializer,
    s.ArtifactUploadSerializer,
]


@settings(max_examples=300, deadline=None, database=None)
@given(cls=st.sampled_from(SERIALIZERS), value=JSON)
def test_every_serializer_decides_any_json(cls, value):
    ser = cls(data=value)
    assert ser.is_valid() in (True, False)
    if ser.is_valid():
        assert isinstance(ser.validated_data, dict)
