"""A full run through the protocol, with every log line of it captured as the JSON the
processes write: no lease id, runner token, registration token, upload signature or
secret value may appear, and protocol lines carry run_id, job_id and the lease's hash."""

import hashlib
import json
import logging
import secrets

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.policies.secrets import set_secret
from apps.runners.actions import do_create_registration_token
from lib.logging import JsonFormatter
from tests.conftest import job_spec


@pytest.fixture
def json_logs(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    caplog.handler.setFormatter(JsonFormatter())
    connection.force_debug_cursor = True  # every SQL statement and its parameters, too
    yield caplog
    connection.force_debug_cursor = False


def test_it_never_logs_a_capability_or_a_secret_during_a_full_run(
    json_logs, make_run, repo, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    secret_value = "pa55-" + secrets.token_hex(12)
    set_secret(repo, "DEPLOY_KEY", secret_value)
    _, registration = do_create_registration_token(environment="dev")
    api = APIClient()
    with django_capture_on_commit_callbacks(execute=True):
        reg = api.post(
            "/api/v1/runners/register",
            {"name": "r-logs", "capabilities": ["os:linux"]},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {registration}",
        )
        assert reg.status_code == 201, reg.content
        runner_token = reg.json()["token"]
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {runner_token}")
        run = make_run([job_spec("build", secrets=["DEPLOY_KEY"])])

        granted = api.post("/api/v1/internal/lease", {"wait_seconds": 0}, format="json").json()
        lid, job_id = granted["lease_id"], granted["job_id"]
        assert granted["secrets"] == {"DEPLOY_KEY": secret_value}
        msg = {"lease_id": lid}
        assert api.post("/api/v1/internal/ack-lease", msg, format="json").status_code == 200
        assert api.post("/api/v1/internal/heartbeat", msg, format="json").status_code == 200
        chunk = api.generic(
            "POST",
            "/api/v1/internal/log",
            b"step 1\n",
            content_type="application/octet-stream",
            HTTP_X_DELTA_LEASE=lid,
            HTTP_CONTENT_RANGE="bytes 0-6/*",
        )
        assert chunk.status_code == 200, chunk.content
        body = b"<testsuite/>"
        art = api.post(
            "/api/v1/internal/artifacts",
            {
                "lease_id": lid,
                "name": "r.xml",
                "artifact_type": "junit",
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            },
            format="json",
        )
        assert art.status_code == 201, art.content
        upload_url = art.json()["upload"]["url"]
        upload_path = "/" + upload_url.split("://", 1)[1].split("/", 1)[1]
        upload_token = upload_path.rsplit("/", 1)[1]
        assert api.generic("PUT", upload_path, body).status_code == 200
        # Hostile and failed requests are logged by Django too: none may echo a capability.
        tampered = upload_path[:-3] + "AAA"
        assert api.generic("PUT", tampered, body).status_code == 403
        stale = api.post("/api/v1/internal/heartbeat", {"lease_id": lid[::-1]}, format="json")
        assert stale.status_code == 409
        forged = APIClient()
        forged.credentials(HTTP_AUTHORIZATION=f"Bearer {lid}")
        assert forged.post("/api/v1/internal/heartbeat", msg, format="json").status_code == 401
        bad_reg = APIClient().post(
            "/api/v1/runners/register",
            {"name": "x"},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {runner_token}",
        )
        assert bad_reg.status_code == 401
        done = api.post(
            "/api/v1/internal/complete",
            {"lease_id": lid, "status": "SUCCEEDED", "exit_code": 0},
            format="json",
        )
        assert done.status_code == 200, done.content

    text = json_logs.text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert len(lines) > 50, "the run should have produced SQL, state and request lines"
    for needle, what in [
        (lid, "lease id"),
        (lid[::-1], "forged lease id"),
        (runner_token, "runner token"),
        (registration, "registration token"),
        (secret_value, "secret value"),
        (upload_token, "upload signature"),
        (tampered.rsplit("/", 1)[1], "tampered upload signature"),
    ]:
        assert needle not in text, f"the {what} leaked into the logs"

    lease_hash = hashlib.sha256(lid.encode()).hexdigest()[:12]
    protocol = [ln for ln in lines if ln.get("msg") == "runner message"]
    by_endpoint = {ln["endpoint"]: ln for ln in protocol if ln["status"] < 400}
    for endpoint in (
        "lease",
        "ack-lease",
        "heartbeat",
        "log-chunk",
        "artifact-request",
        "complete",
    ):
        line = by_endpoint[endpoint]
        assert str(line["run_id"]) == str(run.pk), line
        assert str(line["job_id"]) == str(job_id), line
        assert line["lease"] == lease_hash, line
    stale_line = next(ln for ln in protocol if ln.get("error") == "STALE_LEASE")
    assert stale_line["reason"] == "UNKNOWN_LEASE" and "run_id" not in stale_line
    transitions = [ln for ln in lines if ln.get("logger") == "deltaci.state"]
    assert {"run", "job", "attempt", "lease"} <= {ln["kind"] for ln in transitions}
    assert all(str(ln["run_id"]) == str(run.pk) for ln in transitions)
    assert any(str(ln.get("job_id")) == str(job_id) for ln in transitions)
