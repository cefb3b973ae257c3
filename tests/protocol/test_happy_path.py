"""One job driven to SUCCESS purely through the runner protocol, and a two-job DAG."""

import hashlib

from apps.runs.models import Run
from tests.conftest import job_spec
from tests.protocol.proto import Proto


def lease(runner, **extra):
    return Proto(runner).lease(**extra)


def test_it_drives_a_job_to_success_through_the_protocol(
    make_run, runner, tmp_path, settings, admin_client, django_capture_on_commit_callbacks
):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    run = make_run([job_spec("build", artifacts=[{"type": "junit", "path": "r.xml"}])])
    assert run.state == "QUEUED"
    r = lease(runner)
    assert r.status_code == 200, r.content
    g = r.json()
    assert (
        g["type"] == "LeaseGranted"
        and len(g["lease_id"]) >= 43
        and g["job_spec"]["steps"] == ["true"]
    )
    lid = g["lease_id"]
    c = runner.client
    assert (
        c.post(
            "/api/v1/internal/ack-lease",
            {"type": "AckLease", "lease_id": lid, "job_id": g["job_id"]},
            format="json",
        ).status_code
        == 200
    )
    hb = c.post(
        "/api/v1/internal/heartbeat",
        {"type": "Heartbeat", "lease_id": lid, "progress": {"percent": 10}},
        format="json",
    )
    assert hb.status_code == 200 and hb.json()["cancel_requested"] is False
    log = c.generic(
        "POST",
        "/api/v1/internal/log",
        b"hello\n",
        content_type="application/octet-stream",
        HTTP_X_DELTA_LEASE=lid,
        HTTP_CONTENT_RANGE="bytes 0-5/*",
    )
    assert log.status_code == 200 and log.json()["next_offset"] == 6
    body = b"<testsuite/>"
    a = c.post(
        "/api/v1/internal/artifacts",
        {
            "type": "ArtifactUploadRequest",
            "lease_id": lid,
            "name": "r.xml",
            "artifact_type": "junit",
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "content_type": "application/xml",
        },
        format="json",
    )
    assert a.status_code == 201, a.content
    url = a.json()["upload"]["url"].split("127.0.0.1:8000", 1)[1]
    put = c.generic("PUT", url, body, content_type="application/xml")
    assert put.status_code == 200, put.content
    with django_capture_on_commit_callbacks(execute=True):
        done = c.post(
            "/api/v1/internal/complete",
            {
                "type": "Complete",
                "lease_id": lid,
                "status": "SUCCEEDED",
                "exit_code": 0,
                "artifacts": [{"type": "junit", "uri": a.json()["uri"]}],
            },
            format="json",
        )
    assert done.status_code == 200, done.content
    run.refresh_from_db()
    assert run.state == "SUCCESS"
    detail = admin_client.get(f"/api/v1/runs/{run.pk}").json()
    assert detail["jobs"][0]["job"]["state"] == "SUCCEEDED"
    assert sorted(x["name"] for x in detail["jobs"][0]["artifacts"]) == ["log.txt", "r.xml"]
    assert lid not in str(detail)


def test_it_releases_dependents_and_skips_after_a_failed_need(make_run, runner):
    run = make_run([job_spec("a"), job_spec("b", needs=["a"]), job_spec("c")])
    g = lease(runner).json()
    assert g["job_spec"]["name"] == "a"
    g2 = lease(runner).json()
    assert g2["job_spec"]["name"] == "c"
    assert lease(runner).status_code == 204
    c = runner.client
    assert (
        c.post(
            "/api/v1/internal/complete",
            {"lease_id": g["lease_id"], "status": "FAILED", "exit_code": 1},
            format="json",
        ).status_code
        == 200
    )
    assert (
        c.post(
            "/api/v1/internal/complete",
            {"lease_id": g2["lease_id"], "status": "SUCCEEDED", "exit_code": 0},
            format="json",
        ).status_code
        == 200
    )
    run = Run.objects.get(pk=run.pk)
    jobs = dict(run.jobs.values_list("name", "state"))
    assert jobs == {"a": "FAILED", "b": "SKIPPED", "c": "SUCCEEDED"}
    assert run.state == "FAILED"
