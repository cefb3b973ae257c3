"""Runner tests: no Django, no database. The runner package is imported from runner/ directly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

RUNNER_SRC = Path(__file__).resolve().parents[2] / "runner"
if str(RUNNER_SRC) not in sys.path:
    sys.path.insert(0, str(RUNNER_SRC))

from tests.runner.fake_plane import REGISTRATION_TOKEN, FakePlane  # noqa: E402
from tests.runner.oci import build_images, containers_of  # noqa: E402

GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "init.defaultBranch=main"]


@dataclass
class Repo:
    path: Path
    sha: str


@dataclass
class RunnerDirs:
    base: Path
    state: Path
    work: Path
    cache: Path


@pytest.fixture
def plane() -> Iterator[FakePlane]:
    fake = FakePlane().start()
    yield fake
    fake.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A real git repository with one commit."""
    return make_git_repo(tmp_path / "repo")


def make_git_repo(path: Path) -> Repo:
    path.mkdir()
    (path / "README.md").write_text("hello from the test repo\n")
    (path / "reports").mkdir()
    (path / "reports" / "seed.txt").write_text("seed\n")
    subprocess.run([*GIT, "init", "-q", str(path)], check=True)
    subprocess.run([*GIT, "-C", str(path), "add", "."], check=True)
    subprocess.run([*GIT, "-C", str(path), "commit", "-q", "-m", "initial"], check=True)
    sha = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Repo(path, sha)


@pytest.fixture
def runner_dirs() -> Iterator[RunnerDirs]:
    """Under a world-traversable dir: pytest's tmp_path (0700) is closed to the job user."""
    base = Path(tempfile.mkdtemp(prefix="deltaci-runner-test-"))
    os.chmod(base, 0o755)  # noqa: S103 - the job user must traverse it
    yield RunnerDirs(base, base / "state", base / "work", base / "cache")
    shutil.rmtree(base, ignore_errors=True)


def runner_argv(plane: FakePlane, dirs: RunnerDirs, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "deltaci_runner",
        "--url",
        plane.url,
        "--registration-token",
        REGISTRATION_TOKEN,
        "--state-dir",
        str(dirs.state),
        "--work-dir",
        str(dirs.work),
        "--cache-dir",
        str(dirs.cache),
        "--wait-seconds",
        "1",
        *extra,
    ]


def runner_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELTACI_")}
    env["PYTHONPATH"] = str(RUNNER_SRC)
    return env


def run_runner(
    plane: FakePlane, dirs: RunnerDirs, *extra: str, timeout: float = 40
) -> subprocess.CompletedProcess[str]:
    """One real runner process, `--once`: registers, takes one lease, exits."""
    return subprocess.run(
        runner_argv(plane, dirs, "--once", *extra),
        env=runner_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_runner(plane: FakePlane, dirs: RunnerDirs, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        runner_argv(plane, dirs, "--once", *extra),
        env=runner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_once_started(plane: FakePlane, dirs: RunnerDirs, *extra: str) -> None:
    """Start a runner, wait for its job to print `started`, SIGKILL it (no cleanup)."""
    runner = start_runner(plane, dirs, *extra)
    try:
        assert plane.wait_for(lambda: b"started" in plane.log, timeout=60)
        runner.kill()
        runner.wait(timeout=10)
    finally:
        runner.kill()
        runner.communicate()


def restart_until(plane: FakePlane, dirs: RunnerDirs, *extra: str, gone) -> None:  # noqa: ANN001
    """Start the runner again (same state, same runner id) and wait until `gone()` and the
    job trees its killed instance left are removed."""
    runner = start_runner(plane, dirs, *extra)
    try:
        assert plane.wait_for(gone, timeout=30)
        assert plane.wait_for(lambda: not list(dirs.work.glob("job-*")), timeout=10)
    finally:
        runner.terminate()
        runner.communicate(timeout=20)


def bwrap_problem() -> str | None:
    """Why the bwrap tests cannot run here, or None."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    from deltaci_runner.bwrap import BwrapExecutor
    from deltaci_runner.jobuser import resolve

    return BwrapExecutor(resolve()).probe()


def needs_bwrap() -> pytest.MarkDecorator:
    """Skip where bwrap cannot make sandboxes (not installed; or inside a sandbox, e.g.
    this repository's own pipeline, where namespaces do not nest). With
    DELTACI_REQUIRE_BWRAP=1 (.ci/run) nothing is skipped: the tests run and fail."""
    problem = bwrap_problem()
    required = os.environ.get("DELTACI_REQUIRE_BWRAP") == "1"
    return pytest.mark.skipif(
        problem is not None and not required, reason=f"bwrap unusable here: {problem}"
    )


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = f"host-says-hi{self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def host_http() -> Iterator[ThreadingHTTPServer]:
    """A loopback HTTP server on the runner's host, outside any sandbox; it answers
    `host-says-hi<path>`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def oci_images() -> None:
    build_images()


@pytest.fixture
def oci_plane(oci_images: None) -> Iterator[FakePlane]:
    """A fake control plane whose runner id is unique: its containers are only this test's."""
    fake = FakePlane(runner_id=f"runner-test-{uuid.uuid4().hex[:12]}").start()
    yield fake
    fake.stop()
    for name in containers_of(fake.runner_id):
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False)
