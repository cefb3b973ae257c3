"""A step as a process the runner can stop, and what an executor needs to start one."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaci_runner.workspace import JobDirs

BASH = ["bash", "-e", "-o", "pipefail", "-c"]


class ExecutorError(Exception):
    pass


@dataclass
class StepContext:
    """Everything an executor needs to start one step of one job."""

    dirs: JobDirs
    cwd: Path
    env: dict[str, str]
    limits: dict[str, Any]
    egress: str = "open"
    identity_files: tuple[Path, Path] | None = None
    forwarder: Path | None = None
    proxy_socket: Path | None = None
    container: str | None = None  # the oci executor's container for this job
    helper: subprocess.Popen[bytes] | None = None  # e.g. its egress forwarder


class HostExecutor:
    """What the shell and bwrap executors share: steps run on the host, so there is no
    per-job container to prepare or release, and paths are the host's."""

    name = "host"

    def attach(self, runner_id: str) -> list[str]:
        return []

    def view(self, dirs: JobDirs) -> JobDirs:
        return dirs

    def prepare(self, ctx: StepContext, image: str, run: Any, note: Any) -> str:
        return ""

    def after_failure(self, ctx: StepContext, note: Any) -> None:
        return None

    def release(self, ctx: StepContext) -> None:
        return None


def die_with_runner() -> list[str]:
    """`setpriv --pdeathsig KILL` as a command prefix: the process is SIGKILLed when the
    runner dies. Put it after any user switch (a credential change clears the setting);
    double-forked children are found by the leftovers sweep of the next start."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


def exit_code(returncode: int) -> int:
    """Shell convention: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class StepProcess:
    """A running step started in its own session: SIGTERM/SIGKILL go to its process group."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    @property
    def stdout_fd(self) -> int:
        assert self.popen.stdout is not None
        return self.popen.stdout.fileno()

    def poll(self) -> int | None:
        rc = self.popen.poll()
        return None if rc is None else exit_code(rc)

    def terminate(self) -> None:
        signal_group(self.popen.pid, signal.SIGTERM)

    def kill(self) -> None:
        signal_group(self.popen.pid, signal.SIGKILL)

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        if self.popen.stdout:
            self.popen.stdout.close()


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def start_host(argv: list[str], cwd: Path, env: dict[str, str]) -> StepProcess:
    """A runner-side helper process (git), as the runner's own user, killable as a group."""
    popen = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return StepProcess(popen)
