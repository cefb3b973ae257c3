"""The real runner process against a real (fake) control plane, one lease per test."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import time
from pathlib import Path

import pytest

from tests.runner.conftest import Repo, RunnerDirs, needs_bwrap, run_runner, start_runner
from tests.runner.fake_plane import REGISTRATION_TOKEN, RUNNER_TOKEN, FakePlane

EXECUTORS = ["shell", pytest.param("bwrap", marks=needs_bwrap())]


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains `marker` (used to prove nothing survived)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


def assert_no_leaks(stderr: str, *values: str) -> None:
    for line in stderr.splitlines():
        json.loads(line)  # every runner log line is structured
    for value in (REGISTRATION_TOKEN, RUNNER_TOKEN, *values):
        assert value not in stderr


@pytest.mark.parametrize("executor", EXECUTORS)
def test_it_runs_a_job_and_completes_it_once(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs, executor: str
) -> None:
    grant = plane.add_job(
        str(repo.path),
        repo.sha,
        [
            'echo "building $DELTACI_COMMIT_SHA"; mkdir -p reports',
            "echo '<testsuite/>' > reports/junit.xml; cat README.md",
        ],
        artifacts=[{"type": "junit", "path": "reports/*.xml"}],
    )
    result = run_runner(plane, runner_dirs, "--executor", executor)
    assert result.returncode == 0, result.stderr

    paths = [m.path.rsplit("/", 1)[-1] for m in plane.messages]
    assert paths[:3] == ["register", "lease", "ack-lease"]
    assert "heartbeat" in paths and "log" in paths
    assert paths.index("artifacts") < paths.index("complete")
    completes = plane.bodies("/complete")
    assert len(completes) == 1
    complete = completes[0]
    assert complete["status"] == "SUCCEEDED" and complete["exit_code"] == 0
    assert complete["lease_id"] == grant["lease_id"] and complete["runner_id"] == "runner-1"
    assert complete["artifacts"] == [
        {"type": "junit", "uri": "runs/run-1/jobs/job-1/attempts/1/reports/junit.xml"}
    ]
    request = plane.bodies("/artifacts")[0]
    assert request["artifact_type"] == "junit" and request["content_type"] == "application/xml"
    assert request["sha256"] == hashlib.sha256(b"<testsuite/>\n").hexdigest()
    assert plane.uploads["reports/junit.xml"] == b"<testsuite/>\n"
    (put,) = [m for m in plane.messages if m.method == "PUT"]
    assert "authorization" not in put.headers  # the signed URL is the only credential
    assert put.headers["x-upload-signature"].startswith("sig-")

    beat = plane.bodies("/heartbeat")[0]
    assert beat["lease_id"] == grant["lease_id"] and "step_index" in beat["progress"]
    log = plane.log.decode()
    assert f"building {repo.sha}" in log and "hello from the test repo" in log
    for chunk in plane.of("/log"):
        assert chunk.headers["x-delta-lease"] == grant["lease_id"]
        start, end = map(
            int, re.fullmatch(r"bytes (\d+)-(\d+)/\*", chunk.headers["content-range"]).groups()
        )
        assert end - start + 1 == len(chunk.body)
    assert_no_leaks(result.stderr, grant["lease_id"])
    assert hashlib.sha256(grant["lease_id"].encode()).hexdigest()[:12] in result.stderr
    assert not os.listdir(runner_dirs.work)  # workspace removed


def test_it_stops_at_the_first_failing_step_and_reports_its_exit_code(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(str(repo.path), repo.sha, ["echo one", "echo two; exit 3", "echo never-here"])
    result = run_runner(plane, runner_dirs)
    assert result.returncode == 0, result.stderr
    (complete,) = plane.bodies("/complete")
    assert complete["status"] == "FAILED" and complete["exit_code"] == 3
    assert "step 2/3 failed with exit code 3" in complete["summary"]
    assert "two" in plane.log.decode() and "never-here" not in plane.log.decode()


def test_it_runs_steps_with_errexit_and_pipefail(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(str(repo.path), repo.sha, ["echo x | false | cat; echo not-$((1 + 1))-reached"])
    run_runner(plane, runner_dirs)
    (complete,) = plane.bodies("/complete")
    assert complete["status"] == "FAILED" and complete["exit_code"] == 1
    assert "not-2-reached" not in plane.log.decode()


def test_it_times_out_a_job_after_max_runtime(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(str(repo.path), repo.sha, ["echo started; sleep 1000.551"], max_runtime=2)
    began = time.monotonic()
    result = run_runner(plane, runner_dirs)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 15
    (complete,) = plane.bodies("/complete")
    assert complete["status"] == "TIMED_OUT"
    assert "max_runtime_seconds" in complete["summary"]
    assert "started" in plane.log.decode()
    assert not processes_with("1000.551")


def test_it_stops_the_job_and_never_completes_on_a_stale_lease(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.knobs.stale_when_log_contains = b"started"
    plane.add_job(str(repo.path), repo.sha, ["echo started; sleep 1000.552", "echo step-two"])
    result = run_runner(plane, runner_dirs)
    assert result.returncode == 0, result.stderr
    assert plane.bodies("/complete") == [] and plane.bodies("/cancel-ack") == []
    assert not processes_with("1000.552")
    stale_at = next(i for i, m in enumerate(plane.messages) if m.status == 409)
    assert not [m for m in plane.messages[stale_at + 1 :] if m.path.endswith("/heartbeat")]
    assert "step-two" not in plane.log.decode()


@pytest.mark.parametrize("executor", EXECUTORS)
def test_it_cancels_with_sigterm_a_partial_log_and_a_cancel_ack(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs, executor: str
) -> None:
    plane.knobs.cancel_when_log_contains = b"started"
    plane.add_job(
        str(repo.path),
        repo.sha,
        ["trap 'echo got-sigterm; exit 143' TERM; echo started; sleep 1000.553 & wait"],
    )
    result = run_runner(plane, runner_dirs, "--executor", executor)
    assert result.returncode == 0, result.stderr
    assert plane.bodies("/complete") == []
    (ack,) = plane.bodies("/cancel-ack")
    assert ack["final_status"] == "CANCELED" and "JOB_CANCELED" in ack["summary"]
    log = plane.log.decode()
    assert "started" in log and "got-sigterm" in log and "cancel requested" in log
    assert not processes_with("1000.553")


def test_it_masks_secrets_in_every_chunk_but_gives_them_to_the_job(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    secret = "topsecretvalue-42"
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    grant = plane.add_job(
        str(repo.path),
        repo.sha,
        [
            f'test "$(printf %s "$API_KEY" | sha256sum | cut -c1-16)" = {digest} && echo env-ok',
            "echo plain $API_KEY",
            # Split across two log chunks (the uploader sends every second), and not in argv.
            'printf "split-${API_KEY:0:9}"; sleep 1.3; printf "${API_KEY:9}-end\\n"',
        ],
        secrets={"API_KEY": secret},
    )
    result = run_runner(plane, runner_dirs)
    (complete,) = plane.bodies("/complete")
    assert complete["status"] == "SUCCEEDED", plane.log.decode()
    chunks = [m.body for m in plane.of("/log")]
    assert len(chunks) >= 2
    assert all(b"topsecret" not in chunk for chunk in chunks)
    log = plane.log.decode()
    assert "env-ok" in log and "plain ***" in log and "split-***-end" in log
    assert secret not in json.dumps(plane.bodies("/heartbeat") + plane.bodies("/complete"))
    assert_no_leaks(result.stderr, secret, grant["lease_id"])


def test_it_resumes_the_log_at_the_offset_a_416_names(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.knobs.lose_log_after_first_chunk = True
    plane.add_job(str(repo.path), repo.sha, ["echo part-one; sleep 1.3; echo part-two"])
    run_runner(plane, runner_dirs)
    assert [m.status for m in plane.of("/log")].count(416) >= 1
    log = plane.log.decode()
    assert log.startswith("[deltaci] job unit-tests") and "part-one" in log and "part-two" in log
    assert plane.bodies("/complete")[0]["status"] == "SUCCEEDED"


def test_it_retries_complete_after_a_503_with_the_same_body(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.knobs.complete_failures = 2
    plane.add_job(str(repo.path), repo.sha, ["true"])
    run_runner(plane, runner_dirs)
    completes = plane.of("/complete")
    assert [m.status for m in completes] == [503, 503, 200]
    assert len({m.raw for m in completes}) == 1


def test_it_saves_a_cache_and_restores_it_in_the_next_job_reusing_its_registration(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    cache = {"type": "deps", "key": "pip:abc", "paths": ["~/.cache/tool"], "read_only": False}
    plane.add_job(
        str(repo.path),
        repo.sha,
        ["mkdir -p ~/.cache/tool; echo warm > ~/.cache/tool/f"],
        caches=[cache],
    )
    run_runner(plane, runner_dirs)
    assert plane.bodies("/complete")[0]["caches"] == [
        {"type": "deps", "key": "pip:abc", "hit": False, "read_only": False}
    ]
    state_file = runner_dirs.state / "registration.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600

    plane.add_job(str(repo.path), repo.sha, ["cat ~/.cache/tool/f"], caches=[cache])
    run_runner(plane, runner_dirs)
    second = plane.bodies("/complete")[1]
    assert second["status"] == "SUCCEEDED" and second["caches"][0]["hit"] is True
    assert "warm" in plane.log.decode()
    assert len(plane.of("/register")) == 1  # the restart reused the stored registration


def test_it_evicts_the_least_recently_used_cache_beyond_its_size_limit(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    """Three caches of 30 KiB each as tar files in an 80 KiB store: saving the third
    evicts the one used longest ago — the first, unless a hit has refreshed it since."""

    def job(key: str, steps: list[str]) -> dict:
        cache = {"type": "deps", "key": key, "paths": ["~/.c"], "read_only": False}
        plane.add_job(str(repo.path), repo.sha, steps, caches=[cache])
        run_runner(plane, runner_dirs, "--cache-max-size", "80Ki")
        return plane.bodies("/complete")[-1]

    fill = ["mkdir -p ~/.c && head -c 20480 /dev/urandom > ~/.c/blob"]
    job("a", fill)
    job("b", fill)
    assert job("a", ["test -s ~/.c/blob"])["caches"][0]["hit"] is True  # a is fresh again
    job("c", fill)
    keys = {json.loads(m.read_text())["key"] for m in runner_dirs.cache.glob("*/meta.json")}
    assert keys == {"a", "c"}
    assert job("b", ["test ! -e ~/.c/blob"])["caches"][0]["hit"] is False
    assert not list(runner_dirs.cache.glob(".tmp-*"))


def test_it_refuses_an_unreadable_cache_size(runner_dirs: RunnerDirs, plane: FakePlane) -> None:
    result = run_runner(plane, runner_dirs, "--cache-max-size", "lots")
    assert result.returncode == 2 and "--cache-max-size" in result.stderr


def test_it_never_saves_a_read_only_cache(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    cache = {"type": "deps", "key": "fork:1", "paths": ["~/.cache/tool"], "read_only": True}
    plane.add_job(
        str(repo.path),
        repo.sha,
        ["mkdir -p ~/.cache/tool; echo poison > ~/.cache/tool/f"],
        caches=[cache],
    )
    run_runner(plane, runner_dirs)
    assert plane.bodies("/complete")[0]["status"] == "SUCCEEDED"
    assert plane.bodies("/complete")[0]["caches"][0]["read_only"] is True
    assert not [p for p in runner_dirs.cache.iterdir()]


def test_it_does_not_upload_artifacts_that_point_outside_the_workspace(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(
        str(repo.path),
        repo.sha,
        [
            "mkdir -p out; ln -s /etc/hostname out/leak.txt; ln -s /etc out/dir",
            "echo ok > out/ok.txt",
        ],
        artifacts=[{"type": "file", "path": "out/**/*"}],
    )
    run_runner(plane, runner_dirs, "--executor", "shell")
    assert set(plane.uploads) == {"out/ok.txt"}


def test_it_abandons_the_job_cleanly_on_sigterm(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(str(repo.path), repo.sha, ["echo started; sleep 1000.554"])
    runner = start_runner(plane, runner_dirs)
    try:
        assert plane.wait_for(lambda: b"started" in plane.log)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=15) == 0
    finally:
        runner.kill()
        runner.communicate()
    assert plane.bodies("/complete") == [] and plane.bodies("/cancel-ack") == []
    assert "runner shutting down" in plane.log.decode()
    assert not processes_with("1000.554")


def test_it_stops_promptly_on_sigterm_while_long_polling(
    plane: FakePlane, runner_dirs: RunnerDirs
) -> None:
    runner = start_runner(plane, runner_dirs, "--wait-seconds", "20")
    try:
        assert plane.wait_for(lambda: len(plane.of("/lease")) >= 1)
        began = time.monotonic()
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=10) == 0
        assert time.monotonic() - began < 3
    finally:
        runner.kill()
        runner.communicate()


def test_it_refuses_to_start_with_a_bad_registration_token(
    plane: FakePlane, runner_dirs: RunnerDirs
) -> None:
    result = run_runner(plane, runner_dirs, "--registration-token", "wrong")
    assert result.returncode == 2
    assert "registration refused" in result.stderr and "wrong" not in result.stderr
    assert not (runner_dirs.state / "registration.json").exists()


def test_a_host_run_says_why_its_image_was_not_used(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    """The control plane's explanation (image_isolation=preferred) lands in the job's log."""
    grant = plane.add_job(str(repo.path), repo.sha, ["echo ran"])
    grant["image_note"] = "The image python:3.12 was not used: this job ran on the host."
    result = run_runner(plane, runner_dirs, "--executor", "shell")
    assert result.returncode == 0, result.stderr
    assert "[deltaci] The image python:3.12 was not used" in plane.log.decode()
