"""Single-use pods started by an autoscaler (deploy/k8s/base/runners/scaledjob.yaml):
`--once --max-idle-seconds N` runs one job, or exits 0 when none comes within N s."""

from __future__ import annotations

import json
import time

import pytest

from tests.runner.conftest import Repo, RunnerDirs, run_runner
from tests.runner.fake_plane import FakePlane


def test_a_pod_that_finds_no_job_exits_cleanly_after_its_idle_limit(
    plane: FakePlane, runner_dirs: RunnerDirs
) -> None:
    began = time.monotonic()
    result = run_runner(plane, runner_dirs, "--executor", "shell", "--max-idle-seconds", "1.5")
    assert result.returncode == 0, result.stderr
    assert 1.5 <= time.monotonic() - began < 20
    assert len(plane.of("/lease")) >= 1, "it asked for work before giving up"
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(line["msg"] == "no job within the idle limit; exiting" for line in lines)


def test_a_pod_that_gets_a_job_runs_it_and_exits(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(str(repo.path), repo.sha, ["echo hello"])
    result = run_runner(plane, runner_dirs, "--executor", "shell", "--max-idle-seconds", "30")
    assert result.returncode == 0, result.stderr
    assert [b["status"] for b in plane.bodies("/complete")] == ["SUCCEEDED"]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "86401", "soon"])
def test_it_refuses_an_unusable_idle_limit(
    plane: FakePlane, runner_dirs: RunnerDirs, value: str
) -> None:
    result = run_runner(plane, runner_dirs, "--max-idle-seconds", value, timeout=20)
    assert result.returncode == 2
    assert not plane.of("/register")


# --- protocol versions (apps/runners/api/protocol.py) --------------------------------------


def test_every_request_names_the_protocol_version(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(str(repo.path), repo.sha, ["echo hello"])
    result = run_runner(plane, runner_dirs, "--executor", "shell")
    assert result.returncode == 0, result.stderr
    api = [m for m in plane.messages if m.path.startswith("/api/")]
    assert {m.path.rsplit("/", 1)[1] for m in api} >= {"register", "lease", "complete", "log"}
    assert {m.headers.get("x-delta-protocol") for m in api} == {"1"}


@pytest.mark.parametrize("path", ["/api/v1/runners/register", "/api/v1/internal/lease"])
def test_it_stops_with_a_clear_error_when_told_to_upgrade(
    plane: FakePlane, runner_dirs: RunnerDirs, path: str
) -> None:
    plane.knobs.refuse_protocol_on = path
    result = run_runner(plane, runner_dirs, "--executor", "shell", timeout=20)
    assert result.returncode == 2, "a runner the control plane no longer speaks to must stop"
    assert "no longer supported" in result.stderr
    assert len(plane.of(path)) == 1, "and not retry"
