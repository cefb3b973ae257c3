"""The container executor: each job in one fresh container of its image (podman or docker).

The container is started once per job (`sleep infinity` under an init, never the image's
entrypoint) with a hardened configuration; each step is a `<cli> exec` inside it, so state
persists between steps. The step's environment (secrets included) and script travel on
the exec's stdin, never in argv or the container's configuration, so neither `ps` nor
`inspect` shows them. Every container carries the runner's id as a label: a runner that
starts after a crash removes what its previous instance left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from deltaci_runner.jobuser import JobUser
from deltaci_runner.limits import DEFAULT_NPROC, parse_cpus, parse_memory
from deltaci_runner.process import (
    ExecutorError,
    StepContext,
    StepProcess,
    die_with_runner,
    signal_group,
)
from deltaci_runner.workspace import JobDirs

JOB_MOUNT = Path("/deltaci/job")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
RUNNER_LABEL = "io.deltaci.runner"
PULL_POLICIES = ("always", "missing", "never")
NOFILE = 16384
CLI_TIMEOUT = 60.0
# Reads NUL-separated NAME=value entries, an empty entry, then the script, from stdin;
# exports them and runs the script with stdin closed. Nothing secret is ever in argv.
STEP_WRAPPER = (
    'while IFS= read -r -d \'\' entry && [ -n "$entry" ]; do export "$entry"; done; '
    "IFS= read -r -d '' script; "
    'exec bash -e -o pipefail -c "$script" </dev/null'
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# Pull errors that retrying will not fix: the image or the credentials are wrong.
_CONFIGURATION_ERRORS = (
    "manifest unknown",
    "not found",
    "unauthorized",
    "authentication required",
    "denied",
    "invalid reference",
    "repository name must",
    "does not exist",
    "no such image",
)

Runner = Callable[[StepProcess], int]
Note = Callable[[str], None]


def find_cli(path: str | None = None) -> str | None:
    """The container CLI: `path` when given, else podman, else docker."""
    if path:
        return shutil.which(path) or (path if os.access(path, os.X_OK) else None)
    return shutil.which("podman") or shutil.which("docker")


def _below_hard(resource_id: int, wanted: int) -> int:
    """A limit strictly under the host's hard limit (runtimes refuse one equal to it)."""
    hard = resource.getrlimit(resource_id)[1]
    if hard == resource.RLIM_INFINITY or wanted < hard:
        return wanted
    return max(1, hard - 1)


def _cpus(value: Any) -> str | None:
    cpus = parse_cpus(value)
    return f"{min(cpus, float(os.cpu_count() or 1)):.3f}" if cpus else None


def qualified(image: str) -> str:
    """Docker's reading of a short name: `python:3.12` is `docker.io/library/python:3.12`
    (podman would otherwise ask, or refuse, which registry to search)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if slash else f"docker.io/library/{image}"


def classify_pull_error(output: str) -> str:
    """'configuration' (missing image, refused credentials: not retried) or
    'infrastructure' (registry unreachable or timing out: retried)."""
    lowered = output.lower()
    if any(marker in lowered for marker in _CONFIGURATION_ERRORS):
        return "configuration"
    return "infrastructure"


class ContainerStep(StepProcess):
    """One `exec` in the job's container. Stopping it stops what runs in the container:
    SIGTERM to every job process inside it, SIGKILL by killing the container."""

    def __init__(self, popen: subprocess.Popen[bytes], executor: OciExecutor, name: str) -> None:
        super().__init__(popen)
        self.executor = executor
        self.name = name

    def terminate(self) -> None:
        self.executor.signal_job(self.name, "TERM")

    def kill(self) -> None:
        self.executor.remove(self.name)
        signal_group(self.popen.pid, signal.SIGKILL)

    def close(self) -> None:
        signal_group(self.popen.pid, signal.SIGKILL)  # the exec client only, not the container
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        if self.popen.stdout:
            self.popen.stdout.close()


class OciExecutor:
    """Jobs in containers of their declared image, through a Docker-compatible CLI."""

    name = "oci"
    enforces_egress = True
    job_path = ""  # the image's PATH applies
    visible_roots = None

    def __init__(self, user: JobUser, cli: str, pull: str = "missing") -> None:
        if pull not in PULL_POLICIES:
            raise ExecutorError(f"--pull must be one of {', '.join(PULL_POLICIES)}")
        self.user = user
        self.cli = cli
        self.pull = pull
        self.runner_id = "unregistered"
        self.podman = "podman" in os.path.basename(cli)  # docker's rm -f kills at once anyway
        self.nsenter = shutil.which("nsenter")
        # The forwarder runs as the job user: a system python it can read, else ours.
        self.python = shutil.which("python3", path=SYSTEM_PATH) or sys.executable

    # -- host ----------------------------------------------------------------------------------

    def _cli(
        self, *args: str, timeout: float = CLI_TIMEOUT, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """One short CLI call; a hung or missing CLI is an ExecutorError (the job fails
        with the reason, the runner carries on)."""
        try:
            return subprocess.run(
                [self.cli, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                env=_cli_env(),
                cwd=cwd,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExecutorError(f"{os.path.basename(self.cli)} {args[0]}: {exc}") from None

    def probe(self) -> str | None:
        """Why containers cannot run here, or None when `<cli> info` answers."""
        try:
            result = self._cli("info", "--format", "{{json .}}", timeout=30)
        except ExecutorError as exc:
            return str(exc)
        if result.returncode != 0:
            return (result.stderr.strip() or f"exit {result.returncode}")[:300]
        return None

    def attach(self, runner_id: str) -> list[str]:
        """Adopt the runner's id (for labels) and remove containers a previous instance of
        this runner left behind; returns their names."""
        self.runner_id = runner_id
        found = self._cli(
            "ps", "-a", "--filter", f"label={RUNNER_LABEL}={runner_id}", "--format", "{{.Names}}"
        )
        names = [n for n in found.stdout.split() if n] if found.returncode == 0 else []
        for name in names:
            self.remove(name)
        return names

    # -- per job -------------------------------------------------------------------------------

    def view(self, dirs: JobDirs) -> JobDirs:
        """The job's directories as its steps see them (bind-mounted at a fixed path)."""
        return replace(
            dirs,
            job=JOB_MOUNT,
            src=JOB_MOUNT / dirs.src.relative_to(dirs.job),
            home=JOB_MOUNT / dirs.home.relative_to(dirs.job),
            tmp=JOB_MOUNT / dirs.tmp.relative_to(dirs.job),
        )

    def prepare(self, ctx: StepContext, image: str, run: Runner, note: Note) -> str:
        """Pull (by policy) and start the job's container; returns the image's digest."""
        if not image:
            note("image unavailable (configuration): the job declares no image")
            raise ExecutorError("the container executor needs the job's image")
        image = qualified(image)
        self._pull(image, ctx, run, note)
        name = f"deltaci-{self.runner_id[:12]}-{uuid.uuid4().hex[:12]}"
        ctx.container = name
        # The container's conmon keeps the working directory it is started in and leaves an
        # `oom` marker there when the memory limit kills a process: the job's runner-side
        # directory (removed with the job), not wherever the runner itself was started.
        started = self._cli(*self.run_args(ctx, name, image), timeout=120, cwd=ctx.dirs.base)
        if started.returncode != 0:
            self.remove(name)
            raise ExecutorError(f"container did not start: {started.stderr.strip()[:500]}")
        digest = self.digest(image)
        note(f"container {name} of {image}" + (f" ({digest})" if digest else ""))
        if ctx.egress == "allowlist":
            self._start_forwarder(ctx)
        return digest

    def _pull(self, image: str, ctx: StepContext, run: Runner, note: Note) -> None:
        present = self._cli("image", "inspect", "--format", "{{.Id}}", image).returncode == 0
        if present and self.pull != "always":
            return
        if not present and self.pull == "never":
            note(
                f"image unavailable (configuration): {image} is not on this runner "
                "and its pull policy is never"
            )
            raise ExecutorError(f"image {image} not present (--pull never)")
        note(f"pulling {image}")
        output = ctx.dirs.sandbox / "pull.log"
        rc = run(_pull_process(self.cli, image, output))
        if rc != 0:
            kind = classify_pull_error(output.read_text(errors="replace")[-65536:])
            note(f"image pull failed ({kind}): {image}")
            raise ExecutorError(f"could not pull {image} ({kind})")

    def run_args(self, ctx: StepContext, name: str, image: str) -> list[str]:
        limits = ctx.limits
        memory = parse_memory(limits.get("memory"))
        nproc = _below_hard(resource.RLIMIT_NPROC, DEFAULT_NPROC)
        nofile = _below_hard(resource.RLIMIT_NOFILE, NOFILE)
        args = [
            "run", "-d", "--name", name, "--label", f"{RUNNER_LABEL}={self.runner_id}",
            "--init", "--user", f"{self.user.uid}:{self.user.gid}", "--hostname", "deltaci",
            "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,mode=1777",  # noqa: S108 - in the container
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--pids-limit", str(DEFAULT_NPROC),
            "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}",
            "--ulimit", "core=0:0",
            "--volume", f"{ctx.dirs.job}:{JOB_MOUNT}:rw",
            "--workdir", str(JOB_MOUNT), "--pull", "never", "--log-driver", "none",
        ]  # fmt: skip
        if ctx.egress != "open":  # open: the CLI's default network
            args += ["--network", "none"]
        if self.podman and os.geteuid() != 0:
            args.append("--userns=keep-id")  # rootless: the job user owns the workspace inside too
        if memory:
            args += ["--memory", str(max(memory, 8 * 1024 * 1024))]
            args += ["--memory-swap", str(max(memory, 8 * 1024 * 1024))]
        cpus = _cpus(limits.get("cpu"))
        if cpus:
            args += ["--cpus", cpus]
        return [*args, "--entrypoint", "sleep", image, "infinity"]

    def digest(self, image: str) -> str:
        """The image's manifest digest (podman), else its first repository digest, else
        its content id (docker has no `.Digest`; local builds have no repo digest)."""
        fields = ("{{.Digest}}", "{{range .RepoDigests}}{{.}} {{end}}", "{{.Id}}")
        for field in fields if self.podman else fields[1:]:
            result = self._cli("image", "inspect", "--format", field, image)
            for word in result.stdout.split() if result.returncode == 0 else []:
                value = word.rpartition("@")[2]
                if _DIGEST.fullmatch(value):
                    return value
        return ""

    def start(self, script: str, ctx: StepContext) -> StepProcess:
        if not ctx.container:
            raise ExecutorError("the job's container is not running")
        cwd = str(JOB_MOUNT / ctx.cwd.relative_to(ctx.dirs.job))
        user = f"{self.user.uid}:{self.user.gid}"
        argv = [self.cli, "exec", "-i", "--user", user, "--workdir", cwd, ctx.container]
        popen = subprocess.Popen(
            [*argv, "bash", "-c", STEP_WRAPPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_cli_env(),
        )
        payload = b"".join(
            f"{key}={value}".encode() + b"\0"
            for key, value in ctx.env.items()
            if "\0" not in key + value
        )
        payload += b"\0" + script.replace("\0", "").encode() + b"\0"
        threading.Thread(target=_feed, args=(popen, payload), daemon=True).start()
        return ContainerStep(popen, self, ctx.container)

    def after_failure(self, ctx: StepContext, note: Note) -> None:
        """Say so in the log when the container's memory limit killed something."""
        if ctx.container and self.oom_kills(ctx.container):
            note(
                f"out of memory: the container's memory limit "
                f"({ctx.limits.get('memory')}) was reached and a process was OOM-killed"
            )

    def oom_kills(self, name: str) -> int:
        try:
            pid = self._cli("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
        except ExecutorError:
            return 0
        if not pid.isdigit() or pid == "0":
            return 0
        return _cgroup_oom_kills(int(pid))

    def release(self, ctx: StepContext) -> None:
        """Remove the job's container and stop its forwarder (always, however the job ended)."""
        if ctx.helper is not None:
            ctx.helper.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                ctx.helper.wait(timeout=10)
            if ctx.helper.stdout:
                ctx.helper.stdout.close()
            ctx.helper = None
        if ctx.container:
            self.remove(ctx.container)

    def remove(self, name: str) -> None:
        with contextlib.suppress(ExecutorError):
            self._cli("rm", "-f", *(("-t", "0") if self.podman else ()), name)

    def signal_job(self, name: str, sig: str) -> None:
        """SIGTERM to every process the job user has in the container (not its init)."""
        with contextlib.suppress(ExecutorError):
            user = f"{self.user.uid}:{self.user.gid}"
            self._cli("exec", "--user", user, name, "bash", "-c", f"kill -{sig} -1", timeout=10)

    def _start_forwarder(self, ctx: StepContext) -> None:
        """The allowlist forwarder, in the container's network namespace only: it listens on
        the container's 127.0.0.1 and relays to the runner's proxy socket on the host. The
        container itself stays without any network device."""
        if not (ctx.forwarder and ctx.proxy_socket):
            raise ExecutorError("egress allowlist needs the forwarder and proxy socket")
        if not (self.nsenter and self.python and os.geteuid() == 0):
            raise ExecutorError("egress allowlist with containers needs a root runner, nsenter")
        assert ctx.container is not None
        pid = self._cli("inspect", "--format", "{{.State.Pid}}", ctx.container).stdout.strip()
        if not pid.isdigit():
            raise ExecutorError("container has no process to attach the forwarder to")
        from deltaci_runner.bwrap import PROXY_PORT

        argv = [self.nsenter, f"--net=/proc/{pid}/ns/net", f"--setuid={self.user.uid}"]
        argv += [f"--setgid={self.user.gid}", "--", *die_with_runner(), self.python, "-I", "-S"]
        argv += [str(ctx.forwarder), "127.0.0.1", str(PROXY_PORT), str(ctx.proxy_socket)]
        ctx.helper = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
            env={"LANG": "C.UTF-8"},
        )
        assert ctx.helper.stdout is not None
        if ctx.helper.stdout.readline().strip() != b"ready":
            raise ExecutorError("the egress forwarder did not start")


def _cgroup_oom_kills(pid: int) -> int:
    """OOM kills recorded for the memory cgroup of `pid` (cgroup v1 or v2)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return 0
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            candidates.append(
                Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control"
            )
        elif controllers == "":
            candidates.append(Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events")
    for candidate in candidates:
        with contextlib.suppress(OSError):
            for row in candidate.read_text().splitlines():
                key, _, value = row.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
    return 0


def _cli_env() -> dict[str, str]:
    """The CLI's own environment: enough to find its configuration, none of the runner's secrets."""
    keep = (
        "PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "CONTAINER_HOST",
        "CONTAINERS_CONF", "CONTAINERS_REGISTRIES_CONF", "REGISTRY_AUTH_FILE", "DOCKER_HOST",
        "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
    )  # fmt: skip
    return {k: v for k, v in os.environ.items() if k in keep}


def _feed(popen: subprocess.Popen[bytes], payload: bytes) -> None:
    assert popen.stdin is not None
    with contextlib.suppress(OSError):
        popen.stdin.write(payload)
    with contextlib.suppress(OSError):
        popen.stdin.close()


def _pull_process(cli: str, image: str, output: Path) -> StepProcess:
    """`<cli> pull IMAGE`: progress streamed to the job log, also kept in `output` (its
    error text decides the failure's class)."""
    script = 'set -o pipefail; "$0" pull "$1" 2>&1 | tee "$2"'
    popen = subprocess.Popen(
        ["bash", "-c", script, cli, image, str(output)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=_cli_env(),
    )
    return StepProcess(popen)
