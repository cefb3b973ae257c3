"""Runs driven through the real runner protocol (lease, log, artifacts, complete), then
finalised as the after-commit task does, for the page, report and retention tests."""

import hashlib

import pytest

from apps.artifacts.tasks import finalize_log
from tests.protocol.proto import Proto

JUNIT_FAIL = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="pkg.tests" tests="3">
    <testcase classname="pkg.tests.test_math" name="test_adds" time="0.01"/>
    <testcase classname="pkg.tests.test_math" name="test_divides" time="0.02">
      <failure message="assert 1 == 2">def test_divides():
&gt;       assert 1 == 2
E       assert 1 == 2</failure>
    </testcase>
    <testcase classname="pkg.tests.test_math" name="test_later" time="0"><skipped/></testcase>
  </testsuite>
</testsuites>
"""
JUNIT_PASS = JUNIT_FAIL.replace(
    b"""<failure message="assert 1 == 2">def test_divides():
&gt;       assert 1 == 2
E       assert 1 == 2</failure>""",
    b"",
)


@pytest.fixture
def artifact_store(settings, tmp_path):
    """The artifact store in a temporary directory."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "store")},
        },
    }
    return tmp_path / "store"


def lease(runner) -> dict:
    return Proto(runner).take()


def upload(runner, lease_id: str, name: str, kind: str, body: bytes) -> str:
    r = Proto(runner).artifact(
        lease_id,
        name,
        len(body),
        artifact_type=kind,
        sha256=hashlib.sha256(body).hexdigest(),
        content_type="application/octet-stream",
    )
    assert r.status_code == 201, r.content
    url = r.json()["upload"]["url"].split("://", 1)[1].split("/", 1)[1]
    put = runner.client.generic("PUT", "/" + url, body, content_type="application/octet-stream")
    assert put.status_code == 200, put.content
    return r.json()["uri"]


def send_log(runner, lease_id: str, data: bytes, start: int = 0) -> None:
    r = Proto(runner).log(lease_id, start, data)
    assert r.status_code == 200, r.content


def run_attempt(
    runner,
    *,
    status: str = "SUCCEEDED",
    exit_code: int = 0,
    log: bytes = b"ok\n",
    junit: bytes | None = None,
    files: dict[str, bytes] | None = None,
) -> dict:
    """Lease the next attempt, send its log and artifacts, complete it, and finalise it
    (log into the store, JUnit parsed). Returns the LeaseGranted body."""
    g = lease(runner)
    lid = g["lease_id"]
    c = runner.client
    assert c.post("/api/v1/internal/ack-lease", {"lease_id": lid}, format="json").status_code == 200
    if log:
        send_log(runner, lid, log)
    refs = []
    if junit is not None:
        refs.append({"type": "junit", "uri": upload(runner, lid, "junit.xml", "junit", junit)})
    for name, body in (files or {}).items():
        refs.append({"type": "file", "uri": upload(runner, lid, name, "file", body)})
    done = c.post(
        "/api/v1/internal/complete",
        {
            "type": "Complete",
            "lease_id": lid,
            "status": status,
            "exit_code": exit_code,
            "artifacts": refs,
        },
        format="json",
    )
    assert done.status_code == 200, done.content
    finalize_log(int(g["attempt_id"]))
    return g
