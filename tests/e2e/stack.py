"""Real processes for end-to-end tests: gunicorn serving the control plane, a Celery
worker on a real broker (Redis when configured, else the filesystem transport), and
reference runners — all on the test database, all on loopback."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    d = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{d['NAME']}"
    auth = d["USER"] + (f":{d['PASSWORD']}" if d.get("PASSWORD") else "")
    return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


def terminate_backends(*, only: int | None = None, keep: tuple[int, ...] = ()) -> int:
    """pg_terminate_backend on backends of the test database only (never another
    database's): backend `only`, else all but `keep` and this admin session. Returns
    how many were ended, once they are gone."""
    import psycopg

    where = "datname = current_database() AND pid <> pg_backend_pid() AND NOT pid = ANY(%s)"
    params: list = [list(keep)]
    if only is not None:
        where += " AND pid = %s"
        params.append(only)
    with psycopg.connect(database_url(), autocommit=True) as admin:
        pids = [
            pid
            for pid, ended in admin.execute(
                f"SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE {where}",  # noqa: S608
                params,
            ).fetchall()
            if ended
        ]
        for _ in range(100):
            left = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
            if not left.fetchall():
                break
            time.sleep(0.02)
    return len(pids)


class Stack:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        broker = settings.CELERY_BROKER_URL or "filesystem://"
        keep = {
            k: v for k, v in os.environ.items() if not k.startswith(("DELTACI_", "DATABASE_URL"))
        }
        self.env = {
            **keep,
            "DATABASE_URL": database_url(),
            "DELTACI_DATA_DIR": str(data_dir),
            "CELERY_BROKER_URL": broker,
            "REDIS_URL": settings.REDIS_URL,
            "DELTACI_PUBLIC_URL": self.url,
            "DELTACI_HEARTBEAT_INTERVAL_SECONDS": "1",
            "DELTACI_CANCEL_DEADLINE_SECONDS": "20",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.procs: list[subprocess.Popen] = []
        # Job processes run unprivileged: what they touch must be outside pytest's 0700 tmp.
        self.shared = Path(tempfile.mkdtemp(prefix="deltaci-e2e-"))
        self.shared.chmod(0o755)
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def spawn(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env or self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_file = out
        self.procs.append(proc)
        return proc

    def start(self) -> "Stack":
        py = sys.executable
        self.spawn(
            "web",
            [
                py,
                "-m",
                "gunicorn",
                "deltaci.wsgi",
                "-b",
                f"127.0.0.1:{self.port}",
                "-k",
                "gthread",
                "--threads",
                "16",
                "-w",
                "1",
                "--timeout",
                "120",
            ],
        )
        self.worker()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):  # noqa: S310
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("web did not start:\n" + self.log("web"))

    def worker(self, name: str = "worker") -> subprocess.Popen:
        """A Celery worker process on the stack's broker (fault tests start a second one
        after killing the first)."""
        return self.spawn(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "deltaci",
                "worker",
                "-P",
                "threads",
                "-c",
                "4",
                "-l",
                "INFO",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ],
        )

    def runner(self, name: str, registration_token: str, *extra: str) -> subprocess.Popen:
        base = self.shared / "runners" / name
        for sub in ("work", "cache"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            "PYTHONPATH": str(ROOT / "runner"),
            "DELTACI_REGISTRATION_TOKEN": registration_token,
        }
        return self.spawn(
            f"runner-{name}",
            [
                sys.executable,
                "-m",
                "deltaci_runner",
                "--url",
                self.url,
                "--name",
                name,
                "--state-dir",
                str(base / "state"),
                "--work-dir",
                str(base / "work"),
                "--cache-dir",
                str(base / "cache"),
                "--wait-seconds",
                "1",
                *extra,
            ],
            env,
        )

    def manage(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode:
            raise RuntimeError(proc.stderr)
        return proc.stdout

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @staticmethod
    def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(proc)
            proc.log_file.close()
        shutil.rmtree(self.shared, ignore_errors=True)

    def scratch(self, name: str) -> Path:
        """A directory every job process may write to (for markers across attempts)."""
        path = self.shared / name
        path.mkdir(mode=0o777)
        path.chmod(0o777)
        return path


def wait_for(
    predicate, *, seconds: float = 120, what: str = "condition", stack: Stack | None = None
):
    """Poll real processes for an outcome, with a deadline (never waits for a clock)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    logs = (
        ""
        if stack is None
        else "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(stack.logs.glob("*.log"))
        )
    )
    raise AssertionError(f"timed out waiting for {what}\n{logs}")
