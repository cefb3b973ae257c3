"""Start one step as something the runner can stop: a plain process group, or a bwrap sandbox.

Both executors start the step as the unprivileged job user, under `prlimit`
(and `taskset` for a CPU count) so the job's limits apply to every process
it starts. The bwrap sandbox adds a read-only system, only the job tree
writable, its own PID namespace (killing it kills double-forked children
too) and no network unless the policy's egress is `open`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaci_runner.jobuser import JobUser
from deltaci_runner.workspace import JobDirs

BASH = ["bash", "-e", "-o", "pipefail", "-c"]
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SANDBOX_RUN_DIR = "/run/deltaci"
FORWARDER_IN_SANDBOX = f"{SANDBOX_RUN_DIR}/forwarder.py"
PROXY_SOCKET_IN_SANDBOX = f"{SANDBOX_RUN_DIR}/proxy.sock"
PROXY_PORT = 3128
DEFAULT_NPROC = 4096
# The read-only host system a job may see. Nothing under /root, /home, /var or the runner's dirs.
SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_PATHS = (
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/pki",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/mime.types",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/maven",
)


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


# -- limits ----------------------------------------------------------------------------------------

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?|[kmgtp])?[bB]?\s*$")
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}


def parse_memory(value: Any) -> int | None:
    """'4Gi' / '512M' / '1073741824' -> bytes; None when absent or unreadable."""
    if value in (None, ""):
        return None
    match = _MEMORY.match(str(value))
    if not match:
        return None
    number, unit = float(match.group(1)), (match.group(2) or "")
    if unit.endswith("i"):
        factor = 1024 ** ("KMGTP".index(unit[0].upper()) + 1)
    else:
        factor = _UNITS[unit.lower()]
    return int(number * factor) or None


def parse_cpu(value: Any) -> int | None:
    """'2' / '1.5' / '500m' -> whole CPUs (rounded up); None when absent or unreadable."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        cpus = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return None
    return max(1, math.ceil(cpus)) if cpus > 0 else None


def limit_prefix(limits: dict[str, Any]) -> list[str]:
    """`prlimit … -- [taskset …]`: rlimits set before the job's first process starts."""
    prlimit = shutil.which("prlimit")
    prefix: list[str] = []
    if prlimit:
        prefix = [prlimit, f"--nproc={DEFAULT_NPROC}", "--core=0"]
        memory = parse_memory(limits.get("memory"))
        if memory:
            prefix.append(f"--as={memory}")
        prefix.append("--")
    cpus = parse_cpu(limits.get("cpu"))
    taskset = shutil.which("taskset")
    available = sorted(os.sched_getaffinity(0))
    if cpus and taskset and cpus < len(available):
        prefix += [taskset, "-c", ",".join(str(c) for c in available[:cpus])]
    return prefix


def exit_code(returncode: int) -> int:
    """Shell convention: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


# -- processes -------------------------------------------------------------------------------------


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
        _signal_group(self.popen.pid, signal.SIGTERM)

    def kill(self) -> None:
        _signal_group(self.popen.pid, signal.SIGKILL)

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        if self.popen.stdout:
            self.popen.stdout.close()


class SandboxProcess(StepProcess):
    """A bwrap sandbox. SIGTERM reaches every process inside its PID namespace (bwrap's
    own init does not forward signals); SIGKILL of bwrap tears the whole namespace down."""

    def __init__(self, popen: subprocess.Popen[bytes], info_fd: int) -> None:
        super().__init__(popen)
        self._info: dict[str, Any] = {}
        self._info_ready = threading.Event()
        threading.Thread(target=self._read_info, args=(info_fd,), daemon=True).start()

    def _read_info(self, fd: int) -> None:
        chunks = []
        try:
            while chunk := os.read(fd, 4096):
                chunks.append(chunk)
            self._info = json.loads(b"".join(chunks) or b"{}")
        except (OSError, ValueError):
            self._info = {}
        finally:
            os.close(fd)
            self._info_ready.set()

    def _namespace_pids(self) -> list[int]:
        self._info_ready.wait(timeout=2)
        inode = self._info.get("pid-namespace")
        return list(pids_in_namespace(int(inode))) if inode else []

    def terminate(self) -> None:
        init = self._info.get("child-pid")
        pids = [pid for pid in self._namespace_pids() if pid != init]
        if not pids and self.popen.poll() is None and not self._info:
            self.kill()  # no namespace info: no way to be gentle
        for pid in pids:
            _signal_pid(pid, signal.SIGTERM)

    def kill(self) -> None:
        _signal_group(self.popen.pid, signal.SIGKILL)
        for pid in self._namespace_pids():
            _signal_pid(pid, signal.SIGKILL)


def pids_in_namespace(inode: int) -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino == inode:
                    yield int(entry)
            except OSError:
                continue


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_pid(pid: int, sig: int) -> None:
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


# -- executors -------------------------------------------------------------------------------------


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


class BwrapExecutor:
    """Steps inside bubblewrap, started as the job user (unprivileged user namespace)."""

    name = "bwrap"
    enforces_egress = True

    def __init__(self, user: JobUser, bwrap: str | None = None) -> None:
        self.user = user
        self.bwrap = bwrap or shutil.which("bwrap") or "bwrap"

    @property
    def job_path(self) -> str:
        return SANDBOX_PATH

    @property
    def visible_roots(self) -> tuple[str, ...] | None:
        return ("/usr",)

    def python(self) -> str | None:
        """A python3 the sandbox can see, for the in-sandbox egress forwarder."""
        found = shutil.which("python3", path=SANDBOX_PATH)
        if found and os.path.realpath(found).startswith("/usr/"):
            return found
        return None

    def probe(self) -> str | None:
        """Why bwrap cannot run sandboxes here (as the job user), or None when it can."""
        argv = [self.bwrap, *self._namespaces(), "--unshare-net", *self._system(), "--", "true"]
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                timeout=20,
                check=False,
                cwd="/",
                **self.user.popen_kwargs(),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if result.returncode != 0:
            return result.stderr.decode(errors="replace").strip() or f"exit {result.returncode}"
        return None

    def start(self, script: str, ctx: StepContext) -> StepProcess:
        read_fd, write_fd = os.pipe()
        try:
            argv = [
                *limit_prefix(ctx.limits),
                self.bwrap,
                *self.sandbox_args(ctx, info_fd=write_fd),
                *self._command(script, ctx),
            ]
            popen = subprocess.Popen(
                argv,
                cwd="/",
                env=ctx.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(write_fd,),
                **self.user.popen_kwargs(),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return SandboxProcess(popen, read_fd)

    def sandbox_args(self, ctx: StepContext, info_fd: int) -> list[str]:
        args = [*self._namespaces(), "--hostname", "deltaci"]
        if ctx.egress != "open":
            args.append("--unshare-net")
        args += self._system()
        if ctx.identity_files:
            passwd, group = ctx.identity_files
            args += ["--ro-bind", str(passwd), "/etc/passwd", "--ro-bind", str(group), "/etc/group"]
        args += ["--bind", str(ctx.dirs.job), str(ctx.dirs.job)]
        if ctx.egress == "allowlist":
            if not (ctx.forwarder and ctx.proxy_socket):
                raise ExecutorError("egress allowlist needs the forwarder and proxy socket")
            args += ["--ro-bind", str(ctx.forwarder), FORWARDER_IN_SANDBOX]
            args += ["--bind", str(ctx.proxy_socket), PROXY_SOCKET_IN_SANDBOX]
        args += ["--chdir", str(ctx.cwd), "--info-fd", str(info_fd), "--"]
        return args

    def _command(self, script: str, ctx: StepContext) -> list[str]:
        if ctx.egress != "allowlist":
            return [*BASH, script]
        python = self.python()
        if python is None:
            raise ExecutorError("egress allowlist needs python3 under /usr on the runner host")
        forwarder = [python, "-I", "-S", FORWARDER_IN_SANDBOX, "127.0.0.1", str(PROXY_PORT)]
        return [*forwarder, PROXY_SOCKET_IN_SANDBOX, "--", *BASH, script]

    @staticmethod
    def _namespaces() -> list[str]:
        return [
            "--unshare-user",
            "--disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
        ]

    @staticmethod
    def _system() -> list[str]:
        args = ["--ro-bind", "/usr", "/usr"]
        for name in SYSTEM_DIRS:
            host = f"/{name}"
            if os.path.islink(host):
                args += ["--symlink", os.readlink(host), host]
            elif os.path.isdir(host):
                args += ["--ro-bind", host, host]
        for path in (*ETC_PATHS, *sorted(glob.glob("/etc/java-*"))):
            if os.path.lexists(path):
                args += ["--ro-bind-try", path, path]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108 - inside the sandbox
        return args


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
