"""The bwrap sandbox, proven from inside a real job: network, filesystem, identity, processes."""

from __future__ import annotations

import os
from http.server import ThreadingHTTPServer

from tests.runner.conftest import Repo, RunnerDirs, needs_bwrap, run_runner, start_runner
from tests.runner.fake_plane import FakePlane
from tests.runner.test_protocol import processes_with

pytestmark = needs_bwrap()

CONNECT = """python3 - <<'EOF'
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    print("CONNECTED")
except OSError as exc:
    print("BLOCKED", type(exc).__name__)
EOF"""

FETCH = """python3 - <<'EOF'
import http.client, urllib.error, urllib.request
def show(label, call):
    try:
        print(label, "ok", call())
    except urllib.error.HTTPError as exc:
        print(label, "status", exc.code)
    except OSError as exc:
        print(label, "error", exc)
show("absolute", lambda: urllib.request.urlopen("http://localhost:{port}/a").read().decode())
def tunnel(host):
    conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=5)
    conn.set_tunnel(host, {port})
    conn.request("GET", "/t")
    return conn.getresponse().read().decode()
show("tunnel", lambda: tunnel("localhost"))
show("refused-absolute", lambda: urllib.request.urlopen("http://denied.example:{port}/").read())
show("refused-tunnel", lambda: tunnel("denied.example"))
show("direct", lambda: urllib.request.urlopen("http://127.0.0.1:{port}/d").read().decode())
EOF"""


def job_log(plane: FakePlane, repo: Repo, dirs: RunnerDirs, steps: list[str], **kw) -> str:
    plane.add_job(str(repo.path), repo.sha, steps, **kw)
    result = run_runner(plane, dirs, "--executor", "bwrap")
    assert result.returncode == 0, result.stderr
    return plane.log.decode()


def test_it_has_no_network_with_egress_none(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs, host_http: ThreadingHTTPServer
) -> None:
    port = host_http.server_address[1]
    log = job_log(plane, repo, runner_dirs, [CONNECT.format(port=port)], egress={"mode": "none"})
    assert "BLOCKED" in log and "CONNECTED" not in log


def test_it_shares_the_network_with_egress_open(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs, host_http: ThreadingHTTPServer
) -> None:
    """The control for the test above: the same probe does connect when egress is open."""
    port = host_http.server_address[1]
    log = job_log(plane, repo, runner_dirs, [CONNECT.format(port=port)], egress={"mode": "open"})
    assert "CONNECTED" in log


def test_it_allows_listed_hosts_through_the_proxy_and_refuses_others(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs, host_http: ThreadingHTTPServer
) -> None:
    port = host_http.server_address[1]
    log = job_log(
        plane,
        repo,
        runner_dirs,
        [FETCH.format(port=port)],
        egress={"mode": "allowlist", "allow": ["localhost", "*.example.org"]},
    )
    assert_allowlist_enforced(log)


def assert_allowlist_enforced(log: str) -> None:
    """What FETCH printed when `localhost` is allowed and nothing else."""
    assert "absolute ok host-says-hi/a" in log
    assert "tunnel ok host-says-hi/t" in log
    assert "refused-absolute status 403" in log
    assert "refused-tunnel error Tunnel connection failed: 403" in log
    assert "direct error" in log  # no way around the proxy
    assert "egress to denied.example" in log


def test_it_hides_the_host_and_the_runner_state(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    probes = {
        "/root": "test -e /root",
        "/home": "test -e /home",
        "state": f"test -e {runner_dirs.state}",
        "cache": f"test -e {runner_dirs.cache}",
        "shadow": "cat /etc/shadow",
        "write-usr": "touch /usr/deltaci-probe",
        "other-job-files": f"ls {runner_dirs.work}/*/sandbox",
    }
    steps = [
        " ; ".join(
            f"if {cmd} 2>/dev/null; then echo LEAK$((1))-{n}; fi" for n, cmd in probes.items()
        )
        + "; echo probes-done"
    ]
    log = job_log(plane, repo, runner_dirs, steps)
    assert "probes-done" in log
    assert "LEAK1" not in log
    assert (runner_dirs.state / "registration.json").exists()


def test_it_runs_jobs_as_an_unprivileged_user(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    log = job_log(plane, repo, runner_dirs, ['echo "uid=$(id -u) gid=$(id -g) user=$(whoami)"'])
    line = next(line for line in log.splitlines() if line.startswith("uid="))
    if os.geteuid() == 0:
        assert "uid=0 " not in line and "gid=0 " not in line
    assert "user=" in line and "user=root" not in line


def test_it_applies_memory_and_cpu_limits(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    log = job_log(
        plane,
        repo,
        runner_dirs,
        ['echo "as=$(ulimit -v) cpus=$(nproc)"'],
        limits={"memory": "512Mi", "cpu": "1"},
    )
    assert "as=524288 cpus=1" in log


def test_it_kills_double_forked_children_on_cancel(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.knobs.cancel_when_log_contains = b"started"
    plane.knobs.cancel_deadline_seconds = 2  # SIGKILL 1 s after SIGTERM, for the TERM-ignorer
    steps = [
        "(sleep 1000.771 &) ; (setsid sleep 1000.772 &) ; "
        "(setsid sh -c 'trap \"\" TERM; sleep 1000.773' &) ; echo started; sleep 1000.774"
    ]
    log = job_log(plane, repo, runner_dirs, steps)
    assert "started" in log
    assert plane.bodies("/cancel-ack")[0]["final_status"] == "CANCELED"
    assert not processes_with("1000.77")


def test_it_takes_the_sandbox_down_when_the_runner_is_killed(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    """SIGKILL cannot be handled: --die-with-parent must end the job anyway."""
    plane.add_job(
        str(repo.path), repo.sha, ["(setsid sleep 1000.781 &); echo started; sleep 1000.782"]
    )
    runner = start_runner(plane, runner_dirs, "--executor", "bwrap")
    try:
        assert plane.wait_for(lambda: b"started" in plane.log)
        runner.kill()
        runner.wait(timeout=10)
    finally:
        runner.kill()
        runner.communicate()
    assert plane.wait_for(lambda: not processes_with("1000.78"), timeout=5)
