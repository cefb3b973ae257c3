"""Pick the executor; the `shell` one lives here, `bwrap` in bwrap.py, `oci` in oci.py.

All start steps as the unprivileged job user. The shell executor isolates nothing
else: trusted code only.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from deltaci_runner.bwrap import SANDBOX_PATH, BwrapExecutor
from deltaci_runner.jobuser import JobUser
from deltaci_runner.limits import limit_prefix
from deltaci_runner.oci import OciExecutor, find_cli
from deltaci_runner.process import (
    BASH,
    ExecutorError,
    HostExecutor,
    StepContext,
    StepProcess,
    die_with_runner,
)

__all__ = ["BwrapExecutor", "Executor", "ExecutorError", "OciExecutor", "ShellExecutor", "select"]


class ShellExecutor(HostExecutor):
    """Steps as plain `bash` processes of the job user. No filesystem or network isolation."""

    name = "shell"
    enforces_egress = False

    def __init__(self, user: JobUser) -> None:
        self.user = user
        self.bash = shutil.which("bash") or "/bin/bash"

    @property
    def job_path(self) -> str:
        return os.environ.get("PATH") or SANDBOX_PATH

    @property
    def visible_roots(self) -> tuple[str, ...] | None:
        return None

    def probe(self) -> str | None:
        return None

    def start(self, script: str, ctx: StepContext) -> StepProcess:
        argv = [*die_with_runner(), *limit_prefix(ctx.limits), self.bash, *BASH[1:], script]
        popen = subprocess.Popen(
            argv,
            cwd=ctx.cwd,
            env=ctx.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self.user.popen_kwargs(),
        )
        return StepProcess(popen)


Executor = ShellExecutor | BwrapExecutor | OciExecutor


def select_oci(user: JobUser, cli: str | None = None, pull: str = "missing") -> OciExecutor:
    """The container executor over `cli` (podman, else docker), or why it cannot work."""
    found = find_cli(cli)
    if found is None:
        raise ExecutorError(f"--executor oci: no container CLI found ({cli or 'podman, docker'})")
    executor = OciExecutor(user, found, pull)
    problem = executor.probe()
    if problem is not None:
        raise ExecutorError(f"--executor oci: {found} does not work here: {problem}")
    return executor


def select(
    name: str | None, user: JobUser, cli: str | None = None, pull: str = "missing"
) -> tuple[Executor, str | None]:
    """The executor to use and a warning, if any. An explicit executor that cannot work
    is an error."""
    if name == "oci":
        return select_oci(user, cli, pull), None
    if name == "shell":
        return ShellExecutor(user), None
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        if name == "bwrap":
            raise ExecutorError("--executor bwrap: the bwrap binary is not on PATH")
        return ShellExecutor(user), "bwrap not found: jobs run WITHOUT isolation (shell executor)"
    executor = BwrapExecutor(user, bwrap)
    problem = executor.probe()
    if problem is None:
        return executor, None
    if name == "bwrap":
        raise ExecutorError(f"bwrap cannot start sandboxes as {user.name}: {problem}")
    return ShellExecutor(user), f"bwrap unusable ({problem}): jobs run WITHOUT isolation"
