"""Old runners keep working across a control plane upgrade (apps/runners/api/protocol.py):
the previous release's runner — no X-Delta-Protocol header, exactly the messages it sends —
drives a job to success; a runner speaking a version this control plane does not gets a
426 that says which side to upgrade, and nothing changes."""

import pytest
from rest_framework.test import APIClient

from apps.runners.actions import do_create_registration_token
from apps.runners.api import protocol
from apps.runs.models import Run
from tests.conftest import job_spec
from tests.protocol.proto import snapshot

TS = "2026-01-04T08:00:00Z"


def runner_0_1_0_messages(runner_id: str, lease_id: str, job_id: str) -> dict[str, dict]:
    """What deltaci-runner 0.1.0 sends, field for field (runner/deltaci_runner at that
    release): the previous release's protocol, to be accepted by every later one."""
    return {
        "lease": {
            "type": "LeaseRequest",
            "runner_id": runner_id,
            "capabilities": ["executor:shell", "os:linux", "arch:amd64", "tool:git"],
            "wait_seconds": 0,
        },
        "ack-lease": {
            "type": "AckLease",
            "job_id": job_id,
            "lease_id": lease_id,
            "runner_id": runner_id,
            "accepted_at": TS,
        },
        "heartbeat": {
            "type": "Heartbeat",
            "lease_id": lease_id,
            "runner_id": runner_id,
            "progress": {"percent": None, "current_step": "true", "step_index": 0, "message": None},
            "log_cursor": {"bytes_sent": 6},
            "ts": TS,
        },
        "complete": {
            "type": "Complete",
            "lease_id": lease_id,
            "runner_id": runner_id,
            "status": "SUCCEEDED",
            "exit_code": 0,
            "timings": {"started_at": TS, "finished_at": TS},
            "artifacts": [],
            "caches": [],
            "summary": "all steps passed",
        },
    }


def lease(proto, version: str | None = None):
    headers = {} if version is None else {"HTTP_X_DELTA_PROTOCOL": version}
    return proto.post("lease", {"type": "LeaseRequest", "wait_seconds": 0}, **headers)


def register(client: APIClient, token: str, **headers) -> dict:
    body = {
        "name": "old-runner",
        "capabilities": ["executor:shell", "os:linux"],
        "version": "0.1.0",
    }
    resp = client.post(
        "/api/v1/runners/register",
        body,
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **headers,
    )
    assert resp.status_code == 201, resp.content
    assert resp[protocol.HEADER] == str(protocol.PROTOCOL_VERSION)
    return resp.json()


@pytest.mark.parametrize("announce", [None, "1"])
def test_the_previous_release_runner_drives_a_job_to_success(
    make_run, store, announce, django_capture_on_commit_callbacks
):
    headers = {} if announce is None else {"HTTP_X_DELTA_PROTOCOL": announce}
    run = make_run([job_spec("build")])
    _, reg_token = do_create_registration_token()
    client = APIClient()
    answer = register(client, reg_token, **headers)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {answer['token']}")

    def post(path: str, body: dict):
        resp = client.post(f"/api/v1/internal/{path}", body, format="json", **headers)
        assert resp.status_code == 200, (path, resp.content)
        assert resp[protocol.HEADER] == str(protocol.PROTOCOL_VERSION)
        return resp.json()

    grant = post("lease", runner_0_1_0_messages(answer["runner_id"], "", "")["lease"])
    messages = runner_0_1_0_messages(answer["runner_id"], grant["lease_id"], grant["job_id"])
    post("ack-lease", messages["ack-lease"])
    log = client.generic(
        "POST",
        "/api/v1/internal/log",
        b"hello\n",
        content_type="application/octet-stream",
        HTTP_X_DELTA_LEASE=grant["lease_id"],
        HTTP_CONTENT_RANGE="bytes 0-5/*",
        **headers,
    )
    assert log.status_code == 200, log.content
    assert post("heartbeat", messages["heartbeat"])["extend_lease"] is True
    with django_capture_on_commit_callbacks(execute=True):
        post("complete", messages["complete"])
    assert Run.objects.get(pk=run.pk).state == "SUCCESS"


def test_a_newer_runners_extra_fields_are_ignored(proto, make_run):
    make_run([job_spec("build")])
    grant = proto.take(preferred_executor="container", labels_v2=["x"])
    lid = grant["lease_id"]
    assert proto.ack(lid, accepted_at=TS, sandbox={"kind": "bwrap"}).status_code == 200
    assert proto.heartbeat(lid, resources={"rss_bytes": 1}).status_code == 200
    assert proto.complete(lid, test_summary={"passed": 3}).status_code == 200


@pytest.mark.parametrize(
    ("announced", "upgrade"),
    [("0", "upgrade the runner"), ("2", "upgrade the control plane"), ("9999", "control plane")],
)
def test_an_unsupported_version_is_told_which_side_to_upgrade(proto, make_run, announced, upgrade):
    make_run([job_spec("build")])
    before = snapshot()
    resp = lease(proto, announced)
    assert resp.status_code == 426, resp.content
    error = resp.json()["error"]
    assert error["code"] == "UPGRADE_REQUIRED" and upgrade in error["message"]
    assert error["details"] == {"oldest": 1, "newest": 1, "announced": int(announced)}
    assert resp[protocol.HEADER] == "1"
    assert snapshot() == before


def test_registration_checks_the_version_before_the_token(api, db):
    _, reg_token = do_create_registration_token()
    resp = api.post(
        "/api/v1/runners/register",
        {"name": "r", "capabilities": []},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {reg_token}",
        HTTP_X_DELTA_PROTOCOL="0",
    )
    assert resp.status_code == 426
    unauthenticated = api.post(
        "/api/v1/internal/lease", {}, format="json", HTTP_X_DELTA_PROTOCOL="7"
    )
    assert unauthenticated.status_code == 426


@pytest.mark.parametrize("value", ["", "v1", "1.0", "-1", " 1", "1 ", "１", "12345", "1,2", "0x1"])
def test_a_malformed_version_is_a_bad_request(proto, value):
    resp = lease(proto, value)
    assert resp.status_code == 400, (value, resp.content)
    assert "X-Delta-Protocol" in resp.json()["error"]["message"]


def test_after_a_version_bump_the_previous_one_still_works(proto, make_run, monkeypatch):
    """The rule for the next release: protocol 2 arrives, 1 is still spoken; 0 never is."""
    monkeypatch.setattr(protocol, "PROTOCOL_VERSION", 2)
    make_run([job_spec("build")])
    assert lease(proto, "2").status_code == 200
    assert lease(proto).status_code == 204  # a header-less (0.1.0) runner: version 1
    assert lease(proto, "3").status_code == 426
    monkeypatch.setattr(protocol, "OLDEST_SUPPORTED", 2)
    monkeypatch.setattr(protocol, "PROTOCOL_VERSION", 3)
    refused = lease(proto)
    assert refused.status_code == 426 and "upgrade the runner" in refused.json()["error"]["message"]


def test_the_supported_range_keeps_the_previous_version():
    assert max(1, protocol.PROTOCOL_VERSION - 1) >= protocol.OLDEST_SUPPORTED
    assert protocol.OLDEST_SUPPORTED <= protocol.PROTOCOL_VERSION
