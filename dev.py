#!/usr/bin/env python3
"""Delta CI on one machine, with nothing but Python 3.11 and git installed.

    python3 dev.py up [--verbose]   # web, Celery worker, Celery beat and a local runner
    python3 dev.py test             # the whole test suite (arguments go to pytest)

Both create .venv from requirements-dev.txt (which includes the runtime pins of
requirements.txt) on first use, and again when either changes. `up` keeps its state under
var/ (SQLite, artifacts, broker folder, mirrors), writes each process's JSON log to
var/log/<process>.log (--verbose streams them instead) and prints a short summary: where
to go, the admin password, the runner and its executor, and how its own run goes.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import stat
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
LOGS = DATA / "log"
TERMINAL = ("SUCCESS", "FAILED", "CANCELED", "TIMEOUT")
SHARED_TMP = Path("/var/tmp")  # noqa: S108 - where a reachable work dir goes; ownership checked


def say(label: str, text: str) -> None:
    """One line of the summary: a short label, then what it says."""
    print(f"  {label:<9}{text}", flush=True)


def ensure_venv() -> None:
    stamp = VENV / ".requirements.sha256"
    pins = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in pins)).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    LOGS.mkdir(parents=True, exist_ok=True)
    if not PY.exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    install(pip + ["-r", str(ROOT / "requirements-dev.txt")], "requirements")  # + runtime
    if (ROOT / "runner" / "pyproject.toml").exists():
        install(pip + ["--no-deps", "-e", str(ROOT / "runner")], "the runner")
    stamp.write_text(digest)


def install(cmd: list[str], what: str) -> None:
    """pip, its output in var/log/install.log, one progress line per package here."""
    started = time.monotonic()
    print(f"installing {what} (log: {LOGS / 'install.log'}) …", flush=True)
    with open(LOGS / "install.log", "a") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        count = 0
        for line in proc.stdout:
            log.write(line)
            step = pip_progress(line)
            if step.startswith("collecting"):
                count += 1
                print(f"  [{count:>3}] {step}", flush=True)
            elif step:
                print(f"  {step}", flush=True)
        if proc.wait():
            raise SystemExit(f"pip failed (exit {proc.returncode}); see {LOGS / 'install.log'}")
    print(f"  installed {what} in {time.monotonic() - started:.0f}s", flush=True)


def pip_progress(line: str) -> str:
    """What a line of pip's output means for a person waiting ('' for noise)."""
    words = line.split()
    if line.startswith("Collecting ") and len(words) > 1:
        return f"collecting {words[1]}"
    if line.startswith("Processing ") and len(words) > 1:  # from a local index or file
        return f"collecting {words[1].rsplit('/', 1)[-1]}"
    if line.startswith("Installing collected packages"):
        return "installing the collected packages (the longest step) …"
    return ""


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


def bootstrap(env: dict) -> tuple[str, str]:
    """Migrate, make an admin (password shown once), register this checkout as
    repository `deltaci`; returns a runner registration token and the new password
    ('' when the admin existed). The password travels in the environment, never on a
    command line where a leading '-' would read as an option."""
    manage("migrate", "--noinput", "-v", "0", env=env)
    password = secrets.token_urlsafe(12)
    created = manage(
        "ensure_admin",
        "--username",
        "admin",
        env={**env, "DELTACI_ADMIN_PASSWORD": password},
        capture=True,
    )
    manage("ensure_local_repo", "--name", "deltaci", "--path", str(ROOT), env=env, capture=True)
    token_file = DATA / "runner-registration-token"
    if not token_file.exists():
        token = last_line(
            manage("create_runner_token", "--name", "local-runner", env=env, capture=True)
        )
        token_file.write_text(token)
        token_file.chmod(0o600)
    return token_file.read_text().strip(), password if "created" in created else ""


def _works(argv: list[str], timeout: float) -> bool:
    try:
        return (
            subprocess.run(argv, capture_output=True, timeout=timeout, check=False).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def pipeline_images() -> list[str]:
    """The images this checkout's own pipeline (ci.ai.yaml) runs in."""
    config = ROOT / "ci.ai.yaml"
    text = config.read_text() if config.exists() else ""
    found = re.findall(r"^\s+image:\s*['\"]?([^'\"\s#]+)", text, re.MULTILINE)
    return sorted(set(found))


def runner_executor() -> tuple[list[str], str]:
    """The container executor when podman or docker works here and can have the images
    of this checkout's own pipeline (present, or pulled now); else the runner's own choice
    (bwrap when it works, else shell). And the one line that says which, and why."""
    for cli in ("podman", "docker"):
        path = shutil.which(cli)
        if path is None or not _works([path, "info"], 15):
            continue
        missing = [
            image
            for image in pipeline_images()
            if not _works([path, "image", "inspect", image], 15)
            and not _works([path, "pull", "--quiet", image], 120)
        ]
        if missing:
            return [], (
                f"{cli} works, but {', '.join(missing)} cannot be pulled here (no registry "
                "reachable?): jobs run on this machine (bwrap or shell), and their pages say "
                "their image was not used"
            )
        return ["--executor", "oci", "--container-cli", path], (
            f"container executor ({cli}): each job runs in its declared image"
        )
    return [], "no working podman or docker: jobs run on this machine (bwrap or shell)"


def others_can_enter(path: Path) -> Path | None:
    """The first directory on the way to `path` that other users cannot enter (None:
    all can). Jobs run as another user when the runner runs as root."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.stat().st_mode & stat.S_IXOTH:
            return part
    return None


def work_dir(euid: int | None = None) -> Path:
    """Where the runner puts job directories: var/work, unless the job user could not
    reach it (a checkout in root's 0700 home): then a directory under /var/tmp."""
    if os.environ.get("DELTACI_WORK_DIR"):
        return Path(os.environ["DELTACI_WORK_DIR"])
    wanted = DATA / "work"
    if (os.geteuid() if euid is None else euid) != 0 or others_can_enter(wanted) is None:
        return wanted
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    outside = SHARED_TMP / f"deltaci-{digest}"
    if others_can_enter(outside.parent) is None:
        outside.mkdir(mode=0o711, exist_ok=True)
        info = outside.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise SystemExit(
                f"{outside} is not a directory of ours: remove it, or set DELTACI_WORK_DIR"
            )
        outside.chmod(0o711)  # noqa: S103 - traversable (not listable) by the job user
        return outside / "work"
    blocked = others_can_enter(wanted)
    raise SystemExit(
        f"jobs run as another user, who cannot enter {blocked}: run `chmod o+x {blocked}` "
        "or set DELTACI_WORK_DIR to a directory every user can enter"
    )


def up(verbose: bool = False) -> int:
    ensure_venv()
    DATA.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    url = f"http://{HOST}:{PORT}"
    env = {
        **os.environ,
        "DELTACI_DATA_DIR": str(DATA),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
        "DELTACI_PUBLIC_URL": url,
        "PYTHONUNBUFFERED": "1",
    }
    jobs_dir = work_dir()
    print("preparing the database …", flush=True)
    token, password = bootstrap(env)
    py, mg = str(PY), str(ROOT / "manage.py")
    runner_env = {**env, "DELTACI_REGISTRATION_TOKEN": token, "PYTHONPATH": str(ROOT / "runner")}
    executor_args, executor_line = runner_executor()
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
                url,
                "--state-dir",
                str(DATA / "runner"),
                "--work-dir",
                str(jobs_dir),  # not inside the 0700 state dir: jobs run unprivileged
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
            out = None if verbose else open(LOGS / f"{name}.log", "ab")  # noqa: SIM115
            procs[name] = subprocess.Popen(
                cmd, env=penv, cwd=ROOT, start_new_session=True, stdout=out, stderr=out
            )
        print("starting web, worker, beat and runner …", flush=True)
        wait_http(f"{url}/healthz", 60, procs)
        run_id = trigger_own_head(env)
        print("\nDelta CI is up", flush=True)
        say("web", f"{url}/")
        if password:
            say("admin", f"{url}/admin/  user admin, password {password}  (shown once)")
        else:
            say("admin", f"{url}/admin/  user admin (password as set before)")
        say("runner", runner_summary(LOGS / "runner.log", procs["runner"], jobs_dir))
        say("executor", executor_line)
        say("logs", "streamed here (--verbose)" if verbose else f"{LOGS}/<process>.log (JSON)")
        say(f"run #{run_id}", f"{url}/runs/{run_id}  (this checkout's HEAD)")
        print("Ctrl-C stops everything.\n", flush=True)
        watch(procs, run_id, lambda: stopping)
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


def watch(procs: dict[str, subprocess.Popen], run_id: str, stopping) -> None:
    """Until Ctrl-C: report a process that exits (with its last log line) and each
    change in the progress of our own run."""
    said, next_look = "", 0.0
    while not stopping():
        for name, p in procs.items():
            if p.poll() is not None:
                print(f"{name} exited with {p.returncode}: {last_log(name)}", flush=True)
                print(f"  (whole log: {LOGS / (name + '.log')})", flush=True)
                return
        if time.monotonic() >= next_look and not said.startswith("finished"):
            now = run_progress(DATA / "deltaci.sqlite3", run_id)
            if now and now != said:
                print(f"run #{run_id}: {now}", flush=True)
                said = now
            next_look = time.monotonic() + 2
        time.sleep(0.5)


def run_progress(db: Path, run_id: str) -> str:
    """One line on how a run goes, read from the embedded SQLite database ('' when it
    cannot be read, e.g. with DATABASE_URL pointing elsewhere)."""
    if os.environ.get("DATABASE_URL") or not db.exists():
        return ""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute(
                "SELECT state, started_at, finished_at, reason FROM runs_run WHERE id = ?",
                (int(run_id),),
            ).fetchone()
            jobs = conn.execute(
                "SELECT state, COUNT(*) FROM runs_job WHERE run_id = ? GROUP BY state",
                (int(run_id),),
            ).fetchall()
    except (sqlite3.Error, ValueError):
        return ""
    if row is None:
        return ""
    state, _started, _finished, reason = row
    counts = dict(jobs)
    total = sum(counts.values())
    done = sum(
        n
        for s, n in counts.items()
        if s in ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "SKIPPED")
    )
    failed = counts.get("FAILED", 0) + counts.get("TIMED_OUT", 0)
    if state in TERMINAL:
        return f"finished: {state}" + (f" ({reason})" if reason else f", {total} jobs")
    if state in ("CREATED", "PLANNING"):
        return "planning which jobs to run …"
    tail = f", {failed} failed" if failed else ""
    return f"{state.lower()}, {done} of {total} jobs done{tail}"


def runner_summary(log: Path, proc: subprocess.Popen, jobs_dir: Path) -> str:
    """The runner's name and executor, from its 'runner starting' log line."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        for line in read_lines(log):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "runner starting":
                return f"local-runner, executor {entry.get('executor', '?')}, jobs in {jobs_dir}"
        time.sleep(0.25)
    if proc.poll() is not None:
        return f"did not start: {last_log('runner')}"
    return f"local-runner (starting), jobs in {jobs_dir}"


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def last_log(name: str) -> str:
    """The last line a process logged, its message and error if it is JSON."""
    lines = [line for line in read_lines(LOGS / f"{name}.log") if line.strip()]
    if not lines:
        return "(no output)"
    try:
        entry = json.loads(lines[-1])
    except ValueError:
        return lines[-1][-300:]
    return " ".join(str(entry[k]) for k in ("msg", "error", "work_dir") if entry.get(k))[-300:]


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


def wait_http(url: str, seconds: float, procs: dict[str, subprocess.Popen]) -> None:
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        for name, p in procs.items():
            if p.poll() is not None:
                raise SystemExit(f"{name} exited with {p.returncode}: {last_log(name)}")
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
        unknown = [a for a in args if a not in ("--verbose", "-v")]
        if unknown:
            print(f"unknown option {unknown[0]}\n{__doc__}")
            return 2
        return up(verbose=bool(args))
    if cmd == "test":
        return test(args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
