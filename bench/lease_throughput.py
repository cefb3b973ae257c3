"""Lease throughput of the runner protocol (a benchmark, not a test).

Creates a scratch PostgreSQL database on 127.0.0.1:5432, migrates it, seeds queued
attempts, starts gunicorn (gthread) on loopback, and measures in one run:

  (a) full cycles/s: concurrent simulated runners doing
      lease -> ack -> heartbeat x3 -> complete as fast as they can;
  (b) lease requests/s alone (every request grants a lease);
  (c) heartbeat latency while 200 simulated runners each heartbeat every 0.5 s
      (~400 heartbeats/s: the load of 8,000 runners at the default 20 s interval)
      for --heartbeat-seconds (20 by default: 8,000 samples for the percentiles);
  (baseline) the same claim-and-grant (lock the oldest queued attempt of the runner's
      environment with FOR UPDATE SKIP LOCKED, mark it LEASED, insert its lease) in raw
      SQL through psycopg, at the same concurrency as (a) and (b).

The server runs as in production: DEBUG off, JSON logs at WARNING, and, when Redis is
up on 127.0.0.1:6379, Celery tasks (log finalisation after Complete) queued to Redis
database 14 for the workers instead of run inside the request (they are purged at the
end; no worker runs here). Without Redis they run eagerly, inside the request.

    .venv/bin/python bench/lease_throughput.py [--seconds 6] [--rounds 3] [--concurrency 8]
        [--heartbeat-seconds 20]

The baseline, (a) and (b) run in interleaved rounds (default 3); the figures are the
medians, each ratio the median of the per-round ratios. Targets on a 2-core machine:
cycles >= 2% and lease requests >= 8% of the raw-SQL claim rate, heartbeat p99 < 50 ms.
Every loop is bounded in count and time; only loopback is used; the scratch database is
dropped at the end. The last line of output is one JSON
object: cycles_per_s, lease_per_s, raw_sql_claims_per_s, cycle_ratio, lease_ratio,
heartbeat_p50_ms, heartbeat_p99_ms, heartbeats_per_s.
"""

import argparse
import asyncio
import gc
import hashlib
import http.client
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql://postgres@127.0.0.1:5432/"
HOST = "127.0.0.1"
MAX_REQUESTS_PER_CLIENT = 1_000_000  # a hard bound next to every phase's time bound


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- the scratch database and the server --------------------------------------------------


BROKER = "redis://127.0.0.1:6379/14"


def broker_up() -> bool:
    try:
        with socket.create_connection((HOST, 6379), timeout=0.5):
            return True
    except OSError:
        return False


def purge_broker() -> None:
    """Drop the tasks this run queued (no worker consumes them here)."""
    if not broker_up():
        return
    import redis

    client = redis.Redis.from_url(BROKER, socket_timeout=5)
    keys = [k for pattern in ("celery*", "_kombu*", "unacked*") for k in client.scan_iter(pattern)]
    if keys:
        client.delete(*keys)


def server_env(dbname: str, tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DELTACI_", "DATABASE_", "REDIS_", "CELERY_", "AWS_", "ARTIFACT_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="deltaci.settings",
        DELTACI_ENV_FILE=str(tmp / "none.env"),
        DELTACI_ENV="dev",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        DATABASE_URL=PG + dbname,
        DELTACI_DATA_DIR=str(tmp / "data"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        REDIS_URL="",
        # The production topology: after-commit work (log finalisation) goes to a broker
        # for the workers, not into the web request. Without Redis: eager, in-request.
        CELERY_BROKER_URL=BROKER if broker_up() else "",
        # Nothing may expire or hit a limit while we measure.
        DELTACI_LEASE_TTL_SECONDS="600",
        DELTACI_ACK_TIMEOUT_SECONDS="600",
        DELTACI_MAX_CONCURRENT_LEASES="10000000",
        DELTACI_MAX_CONCURRENT_JOBS="10000000",
    )
    (tmp / "metrics").mkdir(parents=True, exist_ok=True)
    return env


class Gunicorn:
    def __init__(self, env: dict[str, str], workers: int, threads: int) -> None:
        self.port = free_port()
        self.env, self.workers, self.threads = env, workers, threads
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Gunicorn":
        cmd = [
            str(Path(sys.executable).parent / "gunicorn"),
            "deltaci.wsgi:application",
            "--bind",
            f"{HOST}:{self.port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--keep-alive",
            "30",
            # Each worker its own listening socket: the kernel spreads the runners'
            # keep-alive connections evenly instead of the first idle worker taking many.
            "--reuse-port",
            "--log-level",
            "warning",
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env)  # noqa: S603
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def seed(env: dict[str, str], runners: int, attempts: int) -> list[tuple[int, str]]:
    """Migrate, then a repository, `runners` registered runners and `attempts` queued
    attempts (bulk: the setup is not what we measure). Returns (runner id, token)."""
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from apps.runners.actions import do_create_registration_token, do_register_runner
    from apps.runs.actions import do_add_repository

    do_add_repository("bench", "/nonexistent/bench.git", actor="system")
    _, reg = do_create_registration_token(environment="dev")
    tokens = []
    for i in range(runners):
        runner, token = do_register_runner(
            reg, name=f"bench-{i}", capabilities=["os:linux"], version="bench"
        )
        tokens.append((runner.pk, token))
    add_attempts(attempts)
    connection.close()
    return tokens


def add_attempts(n: int, per_run: int = 500) -> None:
    """n more queued attempts, in runs of `per_run` jobs."""
    from django.db import connection
    from django.utils import timezone

    from apps.runs.models import Job, JobAttempt, Repository, Run

    repo = Repository.objects.get(name="bench")
    spec = {
        "name": "unit",
        "image": "python:3.12",
        "workdir": ".",
        "steps": ["pip install -e .", "pytest -q"],
        "needs": [],
        "env": {"CI": "true"},
        "artifacts": [{"type": "junit", "path": "reports/*.xml"}],
        "caches": [],
        "secrets": [],
        "runs_on": ["os:linux"],
        "limits": {},
        "timeout_seconds": 3600,
    }
    base = Run.objects.count()
    for r in range((n + per_run - 1) // per_run):
        run = Run.objects.create(
            repository=repo,
            trigger="manual",
            event_key=f"bench:{base + r}",
            ref="refs/heads/main",
            commit_sha="a" * 40,
            state="RUNNING",
        )
        count = min(per_run, n - r * per_run)
        jobs = Job.objects.bulk_create(
            [
                Job(run=run, name=f"j{i}", position=i, spec=spec, state="QUEUED")
                for i in range(count)
            ],
            batch_size=1000,
        )
        now = timezone.now()
        JobAttempt.objects.bulk_create(
            [
                JobAttempt(
                    job=j,
                    run=run,
                    attempt_number=1,
                    state="QUEUED",
                    run_created_at=run.created_at,
                    queued_at=now,
                )
                for j in jobs
            ],
            batch_size=1000,
        )
    connection.close()


def settle(dsn: str) -> None:
    """Between phases: end what the last phase left live, so every phase starts alike."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE runs_jobattempt SET state = 'SUCCEEDED' WHERE state IN "
            "('LEASED', 'STARTING', 'RUNNING', 'UPLOADING')"
        )
        conn.execute(
            "UPDATE runners_lease SET state = 'COMPLETED' WHERE state IN ('GRANTED', 'ACTIVE')"
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")  # no checkpoint's writes in the middle of a phase


def cpu_ticks() -> tuple[int, int]:
    """(busy, stolen) CPU time on the whole machine so far, in clock ticks (Linux). Stolen
    time is what the hypervisor gave other guests: a noisy host slows every phase."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0, 0
    steal = fields[7] if len(fields) > 7 else 0
    return sum(fields[:8]) - fields[3] - fields[4] - steal, steal


class Meter:
    """How busy the machine was during a phase (and how much the host stole), so a
    noisy neighbour is visible next to the figure it disturbed."""

    def __enter__(self) -> "Meter":
        self.t0, (self.b0, self.s0) = time.monotonic(), cpu_ticks()
        return self

    def __exit__(self, *exc) -> None:
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy, steal = cpu_ticks()
        seconds = max(time.monotonic() - self.t0, 1e-9) * ticks
        self.cores = (busy - self.b0) / seconds
        self.stolen = (steal - self.s0) / seconds

    def __str__(self) -> str:
        return f"busy {self.cores:.2f} cores, stolen {self.stolen:.2f}"


# --- simulated runners ---------------------------------------------------------------------


class Runner:
    """One simulated runner: its own keep-alive connection and token."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def post(self, path: str, body: dict) -> tuple[int, dict | None]:
        data = json.dumps(body).encode()
        for attempt in range(2):
            try:
                self.conn.request("POST", "/api/v1/internal/" + path, data, self.headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def lease(self) -> dict | None:
        status, body = self.post("lease", {"type": "LeaseRequest", "wait_seconds": 0})
        if status == 204:
            return None
        if status != 200:
            raise RuntimeError(f"lease answered {status}: {body}")
        return body

    def expect(self, path: str, body: dict) -> dict:
        status, answer = self.post(path, body)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {answer}")
        return answer


def run_clients(clients: list, work, seconds: float) -> tuple[int, float, list]:
    """Run work(client, deadline) -> count in one thread per client; total and time."""
    counts: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(clients) + 1)

    def body(client) -> None:
        try:
            start.wait(timeout=60)
            n = work(client, time.monotonic() + seconds)
            with lock:
                counts.append(n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    start.wait(timeout=60)
    began = time.monotonic()
    for t in threads:
        t.join(timeout=seconds + 120)
    elapsed = time.monotonic() - began
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    return sum(counts), elapsed, counts


def full_cycle(runner: Runner, deadline: float) -> int:
    done = 0
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= deadline:
            break
        g = runner.lease()
        if g is None:
            break
        lid = g["lease_id"]
        runner.expect("ack-lease", {"type": "AckLease", "lease_id": lid, "job_id": g["job_id"]})
        for step in range(3):
            progress = {"percent": 30 * step, "current_step": "pytest", "step_index": 2}
            runner.expect("heartbeat", {"type": "Heartbeat", "lease_id": lid, "progress": progress})
        runner.expect(
            "complete", {"type": "Complete", "lease_id": lid, "status": "SUCCEEDED", "exit_code": 0}
        )
        done += 1
    return done


def lease_only(runner: Runner, deadline: float) -> int:
    done = 0
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= deadline or runner.lease() is None:
            break
        done += 1
    return done


TRACE: list[tuple[float, float]] = []


def heartbeats(port: int, tokens, seconds: float, interval: float) -> dict:
    """Every runner holds an acknowledged lease and heartbeats on a fixed schedule. The
    runners are coroutines on one event loop, each with its own keep-alive connection:
    200 client threads would fight over the GIL and inflate the latencies they measure."""
    leases = []
    for _, token in tokens:
        r = Runner(port, token)
        g = r.lease()
        if g is None:
            raise RuntimeError("not enough queued attempts for the heartbeat phase")
        r.expect("ack-lease", {"type": "AckLease", "lease_id": g["lease_id"]})
        r.conn.close()
        leases.append((token, g["lease_id"]))
    latencies: list[float] = []
    failures: list[str] = []

    async def runner(token: str, lid: str, ready: asyncio.Event, window: dict) -> None:
        body = json.dumps({"type": "Heartbeat", "lease_id": lid}).encode()
        request = (
            f"POST /api/v1/internal/heartbeat HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            # Warm-up (not measured): the connection, the server thread's database
            # connection and its prepared statements exist before the clock starts.
            writer.write(request)
            if await read_response(reader) != 200:
                failures.append("warm-up")
            warmed.append(1)
            if len(warmed) == len(leases):
                window["start"] = time.monotonic()
                ready.set()
            await ready.wait()
            start, deadline = window["start"], window["start"] + seconds
            next_at = start + random.uniform(0, interval)
            for _ in range(int(seconds / interval) + 2):
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if time.monotonic() >= deadline:
                    break
                t0 = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if os.environ.get("BENCH_TRACE"):
                    TRACE.append((time.monotonic() - start, latencies[-1]))
                if status != 200:
                    failures.append(str(status))
                next_at += interval
        finally:
            writer.close()

    async def main() -> None:
        ready, window = asyncio.Event(), {}
        await asyncio.wait_for(
            asyncio.gather(*(runner(t, lid, ready, window) for t, lid in leases)),
            timeout=seconds + 120,
        )

    warmed: list[int] = []
    # The load generator must not pause itself: a collection in this process would
    # delay reading responses and count as server latency.
    gc.collect()
    gc.disable()
    try:
        asyncio.run(main())
    finally:
        gc.enable()
    elapsed = seconds  # heartbeats are sent only inside the measured window
    if failures:
        raise RuntimeError(f"{len(failures)} heartbeats failed, e.g. {failures[0]}")
    latencies.sort()
    return {
        "count": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


async def read_response(reader) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


# --- the raw-SQL baseline --------------------------------------------------------------------

CLAIM_SQL = """
SELECT a.id FROM runs_jobattempt a
JOIN runs_run r ON r.id = a.run_id
JOIN runs_repository p ON p.id = r.repository_id
WHERE a.state = 'QUEUED' AND p.environment = 'dev'
ORDER BY a.run_created_at, a.id
LIMIT 1
FOR UPDATE OF a SKIP LOCKED
"""
GRANT_SQL = "UPDATE runs_jobattempt SET state = 'LEASED', leased_at = now() WHERE id = %s"
LEASE_SQL = """
INSERT INTO runners_lease (attempt_id, runner_id, lease_hash, lease_prefix, state,
  granted_at, ack_deadline, expires_at, complete_digest)
VALUES (%s, %s, %s, %s, 'GRANTED', now(), now() + interval '30 seconds',
  now() + interval '120 seconds', '')
"""


def raw_sql_claims(dsn: str, runner_ids: list[int], seconds: float) -> tuple[int, float]:
    def work(runner_id: int, deadline: float) -> int:
        done = 0
        with psycopg.connect(dsn) as conn:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= deadline:
                    break
                with conn.transaction():
                    row = conn.execute(CLAIM_SQL).fetchone()
                    if row is None:
                        break
                    conn.execute(GRANT_SQL, row)
                    digest = hashlib.sha256(secrets.token_urlsafe(32).encode()).hexdigest()
                    conn.execute(LEASE_SQL, (row[0], runner_id, digest, digest[:12]))
                done += 1
        return done

    total, elapsed, _ = run_clients(runner_ids, work, seconds)
    return total, elapsed


# --- main -------------------------------------------------------------------------------------


def queued(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM runs_jobattempt WHERE state = 'QUEUED'")
        return row.fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each phase")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of baseline, (a), (b)")
    ap.add_argument("--concurrency", type=int, default=8, help="clients in (a), (b), baseline")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    ap.add_argument("--heartbeat-runners", type=int, default=200)
    ap.add_argument("--heartbeat-interval", type=float, default=0.5)
    # Long enough that one brief machine-wide stall (seen here now and then, hitting every
    # worker at once) cannot by itself decide the 99th percentile.
    ap.add_argument("--heartbeat-seconds", type=float, default=20.0, help="length of (c)")
    args = ap.parse_args()
    if not (0 < args.seconds <= 120 and 0 < args.concurrency <= 64 and 1 <= args.rounds <= 10):
        ap.error("--seconds in (0, 120], --concurrency in [1, 64], --rounds in [1, 10]")
    if not 0 < args.heartbeat_seconds <= 300:
        ap.error("--heartbeat-seconds in (0, 300]")

    tmp = Path(tempfile.mkdtemp(prefix="deltaci-bench-"))
    dbname = f"deltaci_bench_{os.getpid()}"
    dsn = PG + dbname
    with psycopg.connect(PG + "postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    rounds: list[dict[str, float]] = []
    try:
        env = server_env(dbname, tmp)
        clients = max(args.concurrency, args.heartbeat_runners)
        log(f"seeding {dbname} ...")
        tokens = seed(env, clients, 20_000)
        settle(dsn)
        ids = [i for i, _ in tokens[: args.concurrency]]

        with Gunicorn(env, args.workers, args.threads) as server:
            port = server.port
            log(f"gunicorn on {HOST}:{port}: {args.workers} workers x {args.threads} threads")
            # Every worker thread's connection, prepared statements and lazy imports
            # (the broker client's on the first Complete) exist before any phase.
            warm = [Runner(port, t) for _, t in tokens[: args.concurrency]]
            run_clients(warm, full_cycle, 3.0)
            # Rounds interleave the baseline with (a) and (b), so each ratio compares
            # rates measured moments apart; the medians resist a noisy neighbour.
            for r in range(1, args.rounds + 1):
                add_attempts(max(0, 40_000 - queued(dsn)))
                settle(dsn)
                with Meter() as m:
                    raw, raw_s = raw_sql_claims(dsn, ids, args.seconds)
                log(f"[{r}] baseline raw-SQL claims: {raw / raw_s:.0f}/s ({m})")
                settle(dsn)
                runners = [Runner(port, t) for _, t in tokens[: args.concurrency]]
                with Meter() as m:
                    cycles, cycles_s, _ = run_clients(runners, full_cycle, args.seconds)
                log(f"[{r}] (a) full cycles: {cycles / cycles_s:.1f}/s ({m})")
                settle(dsn)
                runners = [Runner(port, t) for _, t in tokens[: args.concurrency]]
                with Meter() as m:
                    leases, leases_s, _ = run_clients(runners, lease_only, args.seconds)
                log(f"[{r}] (b) lease requests: {leases / leases_s:.1f}/s ({m})")
                settle(dsn)
                rounds.append(
                    {"raw": raw / raw_s, "cycles": cycles / cycles_s, "leases": leases / leases_s}
                )

            n = args.heartbeat_runners
            log(f"(c) heartbeats: {n} runners every {args.heartbeat_interval} s ...")
            with Meter() as m:
                hb = heartbeats(port, tokens[:n], args.heartbeat_seconds, args.heartbeat_interval)
            if os.environ.get("BENCH_TRACE"):
                for second in range(int(args.heartbeat_seconds)):
                    window = sorted(lat for t, lat in TRACE if second <= t < second + 1)
                    if window:
                        p50 = 1000 * window[len(window) // 2]
                        p99 = 1000 * window[int(0.99 * (len(window) - 1))]
                        log(f"    t={second}s p50 {p50:.1f} ms p99 {p99:.1f} ms")
            log(
                f"  {hb['count']} heartbeats, {hb['per_s']:.0f}/s, "
                f"p50 {hb['p50_ms']:.1f} ms, p99 {hb['p99_ms']:.1f} ms ({m})"
            )
    finally:
        with psycopg.connect(PG + "postgres", autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        shutil.rmtree(tmp, ignore_errors=True)
        purge_broker()

    def median(key) -> float:
        return statistics.median(key(r) for r in rounds)

    print(
        json.dumps(
            {
                "cycles_per_s": round(median(lambda r: r["cycles"]), 2),
                "lease_per_s": round(median(lambda r: r["leases"]), 2),
                "raw_sql_claims_per_s": round(median(lambda r: r["raw"]), 2),
                "cycle_ratio": round(median(lambda r: r["cycles"] / r["raw"]), 4),
                "lease_ratio": round(median(lambda r: r["leases"] / r["raw"]), 4),
                "heartbeat_p50_ms": round(hb["p50_ms"], 2),
                "heartbeat_p99_ms": round(hb["p99_ms"], 2),
                "heartbeats_per_s": round(hb["per_s"], 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
