"""The container executor's pure parts: names, limits, pull errors, its run arguments."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from deltaci_runner.jobuser import JobUser
from deltaci_runner.oci import (
    OciExecutor,
    _below_hard,
    _cpus,
    classify_pull_error,
    qualified,
)
from deltaci_runner.process import ExecutorError, StepContext
from deltaci_runner.workspace import JobDirs


@pytest.mark.parametrize(
    ("short", "full"),
    [
        ("python:3.12", "docker.io/library/python:3.12"),
        ("team/app:1", "docker.io/team/app:1"),
        ("ghcr.io/o/r:1", "ghcr.io/o/r:1"),
        ("localhost/x:1", "localhost/x:1"),
        ("registry:5000/x", "registry:5000/x"),
    ],
)
def test_short_names_read_as_docker_does(short: str, full: str) -> None:
    assert qualified(short) == full


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ("Error: initializing source docker://x: manifest unknown", "configuration"),
        (
            "reading manifest 1 in docker.io/x: requested access to the resource is denied",
            "configuration",
        ),
        ("unauthorized: authentication required", "configuration"),
        ("invalid reference format", "configuration"),
        (
            "pinging container registry r.io: Get https://r.io/v2/: dial tcp: i/o timeout",
            "infrastructure",
        ),
        ("connect: connection refused", "infrastructure"),
        ("", "infrastructure"),
    ],
)
def test_pull_errors_are_classified(output: str, kind: str) -> None:
    assert classify_pull_error(output) == kind


def test_limits_stay_below_the_hosts_hard_limits() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        assert _below_hard(resource.RLIMIT_NOFILE, hard) == hard - 1
        assert _below_hard(resource.RLIMIT_NOFILE, hard + 10) == hard - 1
    assert _below_hard(resource.RLIMIT_NOFILE, 1) == 1
    assert _cpus("500m") == "0.500" and _cpus("0") is None and _cpus("lots") is None


def _ctx(tmp_path: Path, egress: str, limits: dict) -> StepContext:
    job = tmp_path / "job"
    dirs = JobDirs(tmp_path, job, job / "src", job / "home", job / "tmp", tmp_path / "sandbox")
    return StepContext(dirs=dirs, cwd=dirs.src, env={}, limits=limits, egress=egress)


def test_the_container_is_started_hardened(tmp_path: Path) -> None:
    executor = OciExecutor(JobUser("job", 1234, 1234), "/usr/bin/podman")
    args = executor.run_args(_ctx(tmp_path, "none", {"memory": "1Gi", "cpu": "2"}), "n", "img")
    joined = " ".join(args)
    for flag in (
        "--user 1234:1234",
        "--read-only",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        "--network none",
        "--memory 1073741824",
        "--memory-swap 1073741824",
        "--pids-limit",
        "--ulimit core=0:0",
        "--pull never",
        "--init",
    ):
        assert flag in joined, flag
    assert args[-3:] == ["sleep", "img", "infinity"] and "--privileged" not in joined
    open_args = executor.run_args(_ctx(tmp_path, "open", {}), "n", "img")
    assert "--network" not in open_args and "--memory" not in open_args


def test_an_unknown_pull_policy_is_refused() -> None:
    with pytest.raises(ExecutorError):
        OciExecutor(JobUser("job", 1, 1), "podman", pull="sometimes")


def test_a_cli_that_is_missing_or_hangs_is_an_executor_error(tmp_path: Path) -> None:
    hangs = tmp_path / "hangs"
    hangs.write_text("#!/bin/sh\nexec sleep 30\n")  # exec: the timeout kills it
    hangs.chmod(0o755)
    for cli in (str(tmp_path / "absent"), str(hangs)):
        executor = OciExecutor(JobUser("job", 1, 1), cli)
        with pytest.raises(ExecutorError):
            executor._cli("ps", timeout=0.5)
    assert OciExecutor(JobUser("job", 1, 1), str(tmp_path / "absent")).probe() is not None
    assert OciExecutor(JobUser("job", 1, 1), str(tmp_path / "absent")).oom_kills("x") == 0
