#!/usr/bin/env python3
"""Delta CI on one machine, with nothing but Python 3.11 and git installed.

    python3 dev.py up     # web, Celery worker, Celery beat and a local runner
    python3 dev.py test   # the whole test suite (arguments go to pytest)

Both create .venv from requirements-dev.txt (which includes the runtime pins of
requirements.txt) on first use, and again when either changes.
`up` keeps its state under var/ (SQLite, artifacts, broker folder, mirrors).
"""

import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
DATA = Path(os.environ.get("DELTACI_DATA_DIR", ROOT / "var"))
HOST = os.environ.get("DELTACI_HOST", "127.0.0.1")
PORT = os.environ.get("DELTACI_PORT", "8000")


def ensure_venv() -> None:
    stamp = VENV / ".requirements.sha256"
    pins = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in pins)).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing requirements …", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements-dev.txt")], check=True)  # + runtime
    if (ROOT / "runner" / "pyproject.toml").exists():
        subprocess.run([*pip, "--no-deps", "-e", str(ROOT / "runner")], check=True)
    stamp.write_text(digest)


def manage(*args: str, env: dict, capture: bool = False) -> str:
    proc = subprocess.run(
        [str(PY), str(ROOT / "manage.py"), *args],
        env=env,
        check=True,
        text=True,
        capture_output=capture,
    )
    return proc.stdout if capture else ""


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1].strip()


def bootstrap(env: dict) -> str:
    """Migrate, make an admin (password printed once), register this checkout as
    repository `deltaci`, and return a runner registration token."""
    manage("migrate", "--noinput", "-v", "0", env=env)
    password = secrets.token_urlsafe(12)
    created = manage(
        "ensure_admin", "--username", "admin", "--password", password, env=env, capture=True
    )
    if "created" in created:
        print(
            f"\n  admin login: admin / {password}   (shown once; change it in admin)\n", flush=True
        )
    manage("ensure_local_repo", "--name", "deltaci", "--path", str(ROOT), env=env, capture=True)
    token_file = DATA / "runner-registration-token"
    if not token_file.exists():
        token = last_line(
            manage("create_runner_token", "--name", "local-runner", env=env, capture=True)
        )
        token_file.write_text(token)
        token_file.chmod(0o600)
    return token_file.read_text().strip()


def runner_executor() -> tuple[list[str], str]:
    """The container executor when podman or docker answers here, else the runner's own
    choice (bwrap when it works, else shell); and the one line that says which."""
    for cli in ("podman", "docker"):
        path = shutil.which(cli)
        if path is None:
            continue
        try:
            ok = (
                subprocess.run(
                    [path, "info"], capture_output=True, timeout=15, check=False
                ).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return ["--executor", "oci", "--container-cli", path], (
                f"runner: container executor ({cli}): each job runs in its image"
            )
    return [], "runner: no working podman or docker: jobs run on this machine (bwrap or shell)"


def up() -> int:
    ensure_venv()
    DATA.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DELTACI_DATA_DIR": str(DATA),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
        "DELTACI_PUBLIC_URL": f"http://{HOST}:{PORT}",
        "PYTHONUNBUFFERED": "1",
    }
    token = bootstrap(env)
    py, mg = str(PY), str(ROOT / "manage.py")
    runner_env = {**env, "DELTACI_REGISTRATION_TOKEN": token, "PYTHONPATH": str(ROOT / "runner")}
    executor_args, executor_line = runner_executor()
    print(executor_line, flush=True)
    commands = {
        "web": ([py, mg, "runserver", f"{HOST}:{PORT}", "--noreload"], env),
        "worker": ([py, "-m", "celery", "-A", "deltaci", "worker", "-l", "INFO", "-c", "2"], env),
        "beat": ([py, "-m", "celery", "-A", "deltaci", "beat", "-l", "INFO"], env),
        "runner": (
            [
                py,
                "-m",
                "deltaci_runner",
                "--url",
                f"http://{HOST}:{PORT}",
                "--state-dir",
                str(DATA / "runner"),
                "--work-dir",
                str(DATA / "work"),  # not inside the 0700 state dir: jobs run unprivileged
                "--cache-dir",
                str(DATA / "cache"),
                *executor_args,
            ],
            runner_env,
        ),
    }
    procs: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for name, (cmd, penv) in commands.items():
            procs[name] = subprocess.Popen(cmd, env=penv, cwd=ROOT, start_new_session=True)
        wait_http(f"http://{HOST}:{PORT}/healthz", 60)
        run_id = trigger_own_head(env)
        print(
            f"\n  Delta CI is up: http://{HOST}:{PORT}/   (run of this checkout: "
            f"http://{HOST}:{PORT}/runs/{run_id})\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stopping:
            for name, p in procs.items():
                if p.poll() is not None:
                    print(f"{name} exited with {p.returncode}; stopping", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()  # the leader shuts its own children down (Celery warm shutdown)
        deadline = time.time() + 15
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        print("stopped.", flush=True)
    return 0


def git_out(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return proc.stdout.strip()


def trigger_own_head(env: dict) -> str:
    """A run of this checkout's HEAD, diffed against its parent so the first page shows
    a diff-aware plan (what the last commit affects, and what it does not)."""
    branch = git_out("rev-parse", "--abbrev-ref", "HEAD")
    ref = branch if branch and branch != "HEAD" else "main"
    args = ["trigger_run", "deltaci", "--ref", ref, "--sha", git_out("rev-parse", "HEAD")]
    parent = git_out("rev-parse", "--verify", "-q", "HEAD~1")
    if parent:
        args += ["--base", parent]
    return last_line(manage(*args, env=env, capture=True))


def wait_http(url: str, seconds: float) -> None:
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"web server did not answer at {url}")


def test(args: list[str]) -> int:
    ensure_venv()
    return subprocess.call([str(PY), "-m", "pytest", *args], cwd=ROOT)


def main() -> int:
    cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if cmd == "up":
        return up()
    if cmd == "test":
        return test(args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
