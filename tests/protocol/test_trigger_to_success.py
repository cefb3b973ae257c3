"""The issue's end-to-end check: a run triggered with `trigger_run` on a repository with
a ci.ai.yaml (planned by the real planner) is driven to SUCCESS purely through the
runner protocol, and its DAG order is respected."""

import io

import pytest
from django.core.management import call_command

from apps.runs.models import Run
from tests.gitrepo import GitRepo
from tests.protocol.proto import Proto

CONFIG = """\
version: 1
jobs:
  build:
    image: python:3.12
    steps: ["python -m compileall ."]
  test:
    image: python:3.12
    steps: ["python -m pytest -q"]
    needs: [build]
    runs_on: [os:linux]
"""


@pytest.fixture
def mirrors(settings, tmp_path):
    settings.DELTACI_MIRROR_DIR = tmp_path / "mirrors"


def test_a_triggered_run_is_driven_to_success_over_the_protocol(
    db, tmp_path, mirrors, runner, store, django_capture_on_commit_callbacks
):
    source = GitRepo(tmp_path / "src")
    sha = source.commit({"ci.ai.yaml": CONFIG, "app.py": "print('hi')\n"})
    call_command("add_repo", "svc", "--url", str(source.path), stdout=io.StringIO())
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # planning runs on commit
        call_command("trigger_run", "svc", "--ref", "main", stdout=out)
    run = Run.objects.get(pk=int(out.getvalue().strip().splitlines()[-1]))
    assert run.state == "QUEUED" and run.commit_sha == sha, run.plan_error
    proto = Proto(runner)
    assert list(run.jobs.values_list("name", "state")) == [("build", "QUEUED"), ("test", "PENDING")]
    order = []
    for _ in range(2):
        g = proto.take()
        assert g["source"]["commit_sha"] == sha and g["run_id"] == str(run.pk)
        order.append(g["job_spec"]["name"])
        lid = g["lease_id"]
        assert proto.ack(lid).status_code == 200
        assert proto.heartbeat(lid, progress={"percent": 50}).status_code == 200
        assert proto.log(lid, 0, b"ok\n").status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            assert proto.complete(lid).status_code == 200
    assert order == ["build", "test"]
    run.refresh_from_db()
    assert run.state == "SUCCESS"
    assert dict(run.jobs.values_list("name", "state")) == {
        "build": "SUCCEEDED",
        "test": "SUCCEEDED",
    }
