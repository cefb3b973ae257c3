"""The container executor, for real: podman, locally built images, a real runner process."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.runner.conftest import (
    Repo,
    RunnerDirs,
    kill_once_started,
    restart_until,
    run_runner,
    start_runner,
)
from tests.runner.fake_plane import FakePlane
from tests.runner.oci import PLAIN_IMAGE, PYTHON_IMAGE, containers_of, needs_oci
from tests.runner.test_isolation import CONNECT, FETCH, assert_allowlist_enforced

pytestmark = [needs_oci(), pytest.mark.oci]

OCI = ("--executor", "oci")


def run_job(plane: FakePlane, repo: Repo, dirs: RunnerDirs, steps: list[str], **kw) -> str:
    """One job, one runner `--once`; returns that job's log (the fake plane keeps one)."""
    with plane.lock:
        plane.log.clear()
    plane.add_job(str(repo.path), repo.sha, steps, **{"image": PYTHON_IMAGE, **kw})
    result = run_runner(plane, dirs, *OCI, timeout=90)
    assert result.returncode == 0, result.stderr
    return plane.log.decode(errors="replace")


def completes(plane: FakePlane) -> list[dict]:
    return plane.bodies("/complete")


def classify(log: str, exit_code: int | None) -> str:
    from apps.runs.failures import classify as rules

    found = rules(status="FAILED", exit_code=exit_code, log_tail=log.encode(), job_name="x:build")
    return f"{found.failure_class}: {found.detail}"


def test_each_job_runs_in_its_own_image(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    steps = ["cat /etc/deltaci-image", "echo marker-$(cat README.md | wc -l)"]
    first = run_job(oci_plane, repo, runner_dirs, steps, image=PYTHON_IMAGE)
    second = run_job(oci_plane, repo, runner_dirs, steps, image=PLAIN_IMAGE)
    assert PYTHON_IMAGE in first and PLAIN_IMAGE not in first
    assert PLAIN_IMAGE in second and PYTHON_IMAGE not in second
    assert "marker-1" in first and "marker-1" in second  # the checkout is mounted
    done = completes(oci_plane)
    assert [c["status"] for c in done] == ["SUCCEEDED", "SUCCEEDED"]
    digests = [c["image"]["digest"] for c in done]
    assert all(d.startswith("sha256:") for d in digests) and digests[0] != digests[1]
    assert not containers_of(oci_plane.runner_id)  # removed after each job


def test_steps_share_the_container_state(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    steps = ["echo kept > /tmp/state; echo built > out.txt", "cat /tmp/state out.txt"]
    log = run_job(oci_plane, repo, runner_dirs, steps)
    assert "kept\nbuilt" in log


def test_a_missing_tool_fails_as_tooling(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    log = run_job(oci_plane, repo, runner_dirs, ["python3 -c 'print(1)'"], image=PLAIN_IMAGE)
    done = completes(oci_plane)[0]
    assert done["status"] == "FAILED" and done["exit_code"] == 127
    assert classify(log, 127).startswith("tooling")


def test_the_container_is_hardened(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    probe = (
        'echo "uid=$(id -u)"; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; '
        "if touch /usr/probe 2>/dev/null; then echo ROOT-WRITABLE; else echo root-read-only; fi; "
        'touch /tmp/ok "$HOME/ok" && echo tmp-and-home-writable; '
        'echo "nofile=$(ulimit -n) core=$(ulimit -c)"; '
        "ls /var/lib/deltaci-runner 2>/dev/null || echo no-runner-dirs"
    )
    log = run_job(oci_plane, repo, runner_dirs, [probe])
    assert "uid=0" not in log and "uid=" in log
    assert "CapEff:\t0000000000000000" in log
    assert "NoNewPrivs:\t1" in log
    assert "root-read-only" in log and "ROOT-WRITABLE" not in log
    assert "tmp-and-home-writable" in log
    assert "core=0" in log and "no-runner-dirs" in log


def test_the_memory_limit_holds_and_is_classified_as_out_of_memory(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    hog = 'python3 -c \'b = bytearray(400 * 1024 * 1024); print("ALLOC" + "ATED")\''
    here = set(os.listdir())
    log = run_job(oci_plane, repo, runner_dirs, [hog], limits={"memory": "64Mi", "cpu": "1"})
    assert set(os.listdir()) == here  # conmon's `oom` marker stays in the job's own dir
    done = completes(oci_plane)[0]
    assert done["status"] == "FAILED" and "ALLOCATED" not in log
    assert "[deltaci] out of memory: the container" in log
    assert classify(log, done["exit_code"]).startswith("infrastructure: out of memory")


def test_no_network_with_egress_none(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs, host_http: ThreadingHTTPServer
) -> None:
    port = host_http.server_address[1]
    step = CONNECT.format(port=port)
    log = run_job(
        oci_plane, repo, runner_dirs, [step, "ls /sys/class/net"], egress={"mode": "none"}
    )
    assert "BLOCKED" in log and "CONNECTED" not in log
    assert log.count("\nlo\n") == 1 and "eth0" not in log  # no device but loopback


def test_allowlist_reaches_listed_hosts_only(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs, host_http: ThreadingHTTPServer
) -> None:
    port = host_http.server_address[1]
    log = run_job(
        oci_plane,
        repo,
        runner_dirs,
        [FETCH.format(port=port)],
        egress={"mode": "allowlist", "allow": ["localhost"]},
    )
    assert_allowlist_enforced(log)


def _visible_anywhere(secret: str, name: str) -> list[str]:
    """Where a secret shows outside the job: the container's inspect output, any process's
    argv, the runner's work dir files."""
    found = []
    inspect = subprocess.run(["podman", "inspect", name], capture_output=True, text=True)
    if secret in inspect.stdout:
        found.append("inspect")
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if secret.encode() in cmdline.read_bytes():
                found.append(str(cmdline))
        except OSError:
            continue
    return found


def test_secrets_reach_the_step_but_not_argv_inspect_or_the_log(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    secret = "s3cr3t-" + "q7" * 10
    oci_plane.add_job(
        str(repo.path),
        repo.sha,
        [
            'test "$API_TOKEN" = "$(printf %s s3cr3t-; printf q7%.0s $(seq 10))" && echo SECRET-OK;'
            ' echo "$API_TOKEN"; echo started; sleep 3'
        ],
        image=PYTHON_IMAGE,
        secrets={"API_TOKEN": secret},
    )
    runner = start_runner(oci_plane, runner_dirs, *OCI)
    try:
        assert oci_plane.wait_for(lambda: b"started" in oci_plane.log, timeout=60)
        names = containers_of(oci_plane.runner_id)
        assert len(names) == 1
        leaks = _visible_anywhere(secret, names[0])
        runner.wait(timeout=60)
    finally:
        runner.kill()
        runner.communicate()
    assert leaks == []
    log = oci_plane.log.decode()
    assert "SECRET-OK" in log and secret not in log and "***" in log


def test_cancel_removes_the_container_within_the_deadline(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    oci_plane.knobs.cancel_when_log_contains = b"started"
    oci_plane.knobs.cancel_deadline_seconds = 4
    steps = ["(setsid sh -c 'trap \"\" TERM; sleep 1000' &); echo started; sleep 1000"]
    oci_plane.add_job(str(repo.path), repo.sha, steps, image=PYTHON_IMAGE)
    runner = start_runner(oci_plane, runner_dirs, *OCI)
    try:
        assert oci_plane.wait_for(lambda: b"started" in oci_plane.log, timeout=60)
        asked = time.monotonic()
        assert oci_plane.wait_for(lambda: oci_plane.bodies("/cancel-ack"), timeout=10)
        acked = time.monotonic() - asked
        gone = containers_of(oci_plane.runner_id) == []
        runner.wait(timeout=30)
    finally:
        runner.kill()
        runner.communicate()
    assert gone and acked < 4 + 1  # the container went before the CancelAck
    assert oci_plane.bodies("/cancel-ack")[0]["final_status"] == "CANCELED"


def test_a_restarted_runner_removes_what_a_killed_one_left(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    oci_plane.add_job(str(repo.path), repo.sha, ["echo started; sleep 1000"], image=PYTHON_IMAGE)
    kill_once_started(oci_plane, runner_dirs, *OCI)
    assert len(containers_of(oci_plane.runner_id)) == 1  # left behind, as the crash would
    assert list(runner_dirs.work.glob("job-*"))
    restart_until(oci_plane, runner_dirs, *OCI, gone=lambda: not containers_of(oci_plane.runner_id))


def test_pull_never_with_a_missing_image_is_a_configuration_failure(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    oci_plane.add_job(str(repo.path), repo.sha, ["true"], image="localhost/deltaci-absent:1")
    result = run_runner(oci_plane, runner_dirs, *OCI, "--pull", "never", timeout=60)
    assert result.returncode == 0, result.stderr
    done = completes(oci_plane)[0]
    log = oci_plane.log.decode()
    assert done["status"] == "FAILED" and "image unavailable (configuration)" in log
    assert classify(log, None).startswith("user: configuration")


def test_an_invalid_reference_is_a_configuration_failure(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    oci_plane.add_job(str(repo.path), repo.sha, ["true"], image="Not A Valid//Ref")
    result = run_runner(oci_plane, runner_dirs, *OCI, timeout=60)
    assert result.returncode == 0, result.stderr
    log = oci_plane.log.decode()
    assert "image pull failed (configuration)" in log, log
    assert json.dumps(completes(oci_plane)[0]).count("FAILED")


def test_the_time_limit_stops_and_removes_the_container(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    steps = ["echo started; sleep 1000"]
    log = run_job(oci_plane, repo, runner_dirs, steps, max_runtime=2)
    assert "started" in log
    assert completes(oci_plane)[0]["status"] == "TIMED_OUT"
    assert not containers_of(oci_plane.runner_id)


def test_caches_and_artifacts_work_as_on_the_host(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    cache = {"type": "deps", "key": "pip:oci", "paths": ["~/.cache/tool"], "read_only": False}
    steps = ["mkdir -p ~/.cache/tool out; echo warm > ~/.cache/tool/f; echo built > out/a.txt"]
    artifacts = [{"type": "file", "path": "out/*.txt"}]
    run_job(oci_plane, repo, runner_dirs, steps, caches=[cache], artifacts=artifacts)
    assert oci_plane.uploads["out/a.txt"] == b"built\n"
    log = run_job(oci_plane, repo, runner_dirs, ["cat ~/.cache/tool/f"], caches=[cache])
    assert completes(oci_plane)[1]["caches"][0]["hit"] is True and "warm" in log


class _Registry(BaseHTTPRequestHandler):
    """A registry on loopback that has no images: manifests are unknown, `private/*`
    wants credentials."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/v2/":
            self._answer(200, {})
        elif self.path.startswith("/v2/private/"):
            self._answer(
                401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
            )
        else:
            self._answer(
                404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
            )

    do_HEAD = do_GET  # noqa: N815

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))  # plain HTTP, for this one
    yield host
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("deltaci-test/absent:1", "configuration"),  # manifest unknown
        ("private/app:1", "configuration"),  # credentials refused
        (None, "infrastructure"),  # nothing listens: the registry is unreachable
    ],
)
def test_pull_failures_are_classified(
    oci_plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs, registry: str, name, kind
) -> None:
    image = f"{registry}/{name}" if name else "127.0.0.1:1/deltaci-test/absent:1"
    log = run_job(oci_plane, repo, runner_dirs, ["true"], image=image)
    assert completes(oci_plane)[0]["status"] == "FAILED"
    assert f"[deltaci] pulling {image}" in log
    assert f"image pull failed ({kind})" in log, log
    expected = (
        "user: configuration" if kind == "configuration" else "infrastructure: image registry"
    )
    assert classify(log, None).startswith(expected)
