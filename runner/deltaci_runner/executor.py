"""Pick the executor; the `shell` one lives here, `bwrap` in bwrap.py.

Both start steps as the unprivileged job user, in a new session, under the
job's rlimits. The shell executor isolates nothing else: trusted code only.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from deltaci_runner.bwrap import SANDBOX_PATH, BwrapExecutor
from deltaci_runner.jobuser import JobUser
from deltaci_runner.limits import limit_prefix
from deltaci_runner.process import BASH, ExecutorError, StepContext, StepProcess

__all__ = ["BwrapExecutor", "Executor", "ExecutorError", "ShellExecutor", "select"]


class ShellExecutor:
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
        argv = limit_prefix(ctx.limits) + [self.bash, *BASH[1:], script]
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


Executor = ShellExecutor | BwrapExecutor


def select(name: str | None, user: JobUser) -> tuple[Executor, str | None]:
    """The executor to use and a warning, if any. Explicit bwrap that cannot work is an error."""
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
