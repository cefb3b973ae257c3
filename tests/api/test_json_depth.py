"""Deeply nested JSON is a 400 with the contract's error body at every DRF entry point
(the runner protocol, registration, the run API; the webhook's test is in
tests/vcs/test_webhook_signature.py), never a 500 from a RecursionError — whether the
decoder itself overflows or a document just shallow enough to decode would overflow
later."""

import pytest

from apps.runs.models import Run
from lib import jsonsafe
from tests.api.test_protocol_input import assert_error, raw
from tests.conftest import job_spec
from tests.protocol.proto import snapshot

OVERFLOW = b"[" * 100_000 + b"]" * 100_000  # the decoder itself gives up
DEEP_LIST = b"[" * 200 + b"]" * 200  # decodes, but deeper than the bound


def deep_object(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


def test_the_guard_bounds_depth_without_recursing():
    assert jsonsafe.loads(deep_object(jsonsafe.MAX_DEPTH)) is not None
    for text in (deep_object(jsonsafe.MAX_DEPTH + 1), OVERFLOW, DEEP_LIST):
        with pytest.raises(ValueError, match="nested deeper"):
            jsonsafe.loads(text)
    wide = b"[" + b",".join([b"[1]"] * 100_000) + b"]"
    assert len(jsonsafe.loads(wide)) == 100_000


@pytest.mark.parametrize("path", ["heartbeat", "complete", "artifacts", "lease"])
def test_deep_fields_of_runner_messages_are_a_400(proto, make_run, path):
    make_run([job_spec("a")])
    lease_id = proto.take()["lease_id"]
    before = snapshot()
    head = (
        b'{"type": "Heartbeat", "lease_id": "' + lease_id.encode() + b'", "status": "SUCCEEDED",'
        b' "exit_code": 0, "name": "a", "artifact_type": "file", "size": 1, "wait_seconds": 0,'
        b' "progress": '
    )
    for nested in (deep_object(200), deep_object(900)):
        assert_error(raw(proto, path, head + nested + b"}"), 400, "INVALID_REQUEST")
    assert snapshot() == before


def test_registration_refuses_a_deep_body(api, db):
    from apps.runners.actions import do_create_registration_token

    _, token = do_create_registration_token(environment="dev")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for body in (OVERFLOW, deep_object(500)):
        r = api.generic("POST", "/api/v1/runners/register", body, content_type="application/json")
        assert_error(r, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("rerun", [False, True], ids=["trigger", "rerun"])
def test_the_run_api_refuses_deep_bodies(member, as_user, make_run, rerun):
    path = f"/api/v1/runs/{make_run().pk}/rerun" if rerun else "/api/v1/runs"
    client = as_user(member)
    runs = Run.objects.count()
    for body in (OVERFLOW, b'{"repo": "demo", "x": ' + deep_object(500) + b"}"):
        r = client.generic("POST", path, body, content_type="application/json")
        assert_error(r, 400, "INVALID_REQUEST")
    assert Run.objects.count() == runs
