"""Metrics stay right under gunicorn with several workers: a real gunicorn (the project's
deploy/gunicorn.conf.py, two workers) serves runner messages on loopback, one worker is
kept busy so the others must answer, and one scrape reports every worker's counts."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from apps.runners.actions import do_create_registration_token, do_register_runner
from tests.e2e.stack import wait_for

ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "t" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DELTACI_DATA_DIR": str(tmp_path / "data"),
        "DELTACI_ENV_FILE": "/nonexistent",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "DELTACI_METRICS_TOKEN": METRICS_TOKEN,
        "CELERY_BROKER_URL": "",
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT),
    }
    gunicorn_bin = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn_bin), "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
        # Truly sync: with the config's threads > 1 gunicorn would quietly run gthread, and
        # one worker could then serve every request while another one is busy.
        + ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--worker-class", "sync"]
        + ["--threads", "1"]
        + ["--timeout", "30", "--worker-tmp-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):  # noqa: S310
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])
            time.sleep(0.2)
    yield port, metrics_dir
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def heartbeat_request(token: str, lease_id: str) -> tuple[bytes, bytes]:
    body = json.dumps({"type": "Heartbeat", "lease_id": lease_id}).encode()
    head = (
        "POST /api/v1/internal/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    ).encode()
    return head, b"\r\n" + body


def send(port: int, head: bytes, rest: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + rest)
        return b"".join(iter(lambda: s.recv(65536), b""))


def accepted(port: int, client_port: int) -> bool:
    """Has a worker accept()ed the connection from `client_port`? The kernel lists the
    server's end of it with no inode while it waits in the listen queue, and with the
    worker's socket inode once accepted (/proc/net/tcp; the event, not a guess at time)."""
    ends = (f"0100007F:{port:04X}", f"0100007F:{client_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == ends and fields[9] != "0":
            return True
    return False


def test_counts_from_every_worker_add_up_in_one_scrape(gunicorn):
    port, metrics_dir = gunicorn
    _, reg = do_create_registration_token(environment="dev")
    _, token = do_register_runner(reg, name="mp", capabilities=[], version="t")
    head, rest = heartbeat_request(token, "u" * 43)

    # The worker that accepts this half-sent request is busy until it is finished...
    busy = socket.create_connection(("127.0.0.1", port), timeout=10)
    busy.sendall(head)
    client_port = busy.getsockname()[1]
    wait_for(lambda: accepted(port, client_port), seconds=10, what="a worker to accept it")
    # ...so these are answered by the other worker.
    answers = [send(port, head, rest) for _ in range(5)]
    busy.sendall(rest)
    answers.append(b"".join(iter(lambda: busy.recv(65536), b"")))
    busy.close()
    assert all(a.startswith(b"HTTP/1.1 409") for a in answers), answers[0][:300]

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        text = resp.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    hb = (("code", "409"), ("endpoint", "heartbeat"))
    assert samples[("deltaci_runner_request_duration_seconds_count", hb)] == 6
    stale = (("endpoint", "heartbeat"), ("reason", "UNKNOWN_LEASE"))
    assert samples[("deltaci_stale_lease_answers_total", stale)] == 6
    assert samples[("deltaci_database_up", ())] == 1
    pids = {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("histogram_*.db")}
    assert len(pids) == 2, "both workers served heartbeats and kept their own files"
