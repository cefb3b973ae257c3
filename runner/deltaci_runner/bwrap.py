"""The bubblewrap executor: each step in a sandbox started by the unprivileged job user.

Read-only system, only the job tree writable, own PID/IPC/UTS/cgroup/user
namespaces, `--die-with-parent` (a SIGKILLed runner takes the sandbox down),
no network unless egress is `open`; with `allowlist` an in-sandbox forwarder
relays 127.0.0.1:3128 to the runner's egress proxy through a bound Unix socket.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

from deltaci_runner.jobuser import JobUser
from deltaci_runner.limits import limit_prefix
from deltaci_runner.process import (
    BASH,
    ExecutorError,
    HostExecutor,
    StepContext,
    StepProcess,
    signal_group,
    signal_pid,
)

SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SANDBOX_RUN_DIR = "/run/deltaci"
FORWARDER_IN_SANDBOX = f"{SANDBOX_RUN_DIR}/forwarder.py"
PROXY_SOCKET_IN_SANDBOX = f"{SANDBOX_RUN_DIR}/proxy.sock"
PROXY_PORT = 3128
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
            signal_pid(pid, signal.SIGTERM)

    def kill(self) -> None:
        signal_group(self.popen.pid, signal.SIGKILL)
        for pid in self._namespace_pids():
            signal_pid(pid, signal.SIGKILL)


def pids_in_namespace(inode: int) -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino == inode:
                    yield int(entry)
            except OSError:
                continue


class BwrapExecutor(HostExecutor):
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
