"""What an executor adds to every job (a benchmark, not a test).

A real `deltaci-runner` process takes jobs from a small in-process control plane
(tests/runner/fake_plane.py) on loopback, one after another, and for each job measures:

  first output: from the moment the control plane hands out the lease to the first line
      the job's first step prints (the step prints its own wall clock: the runner's log
      upload batching does not count);
  teardown: from the end of the last step (again its own clock) to the Complete arriving.

for `bwrap` (skipped, with the reason, where bubblewrap cannot make sandboxes) and for
`oci` (podman, with a warm image: built once by deploy/debian-image.sh, never pulled).

    .venv/bin/python bench/job_overhead.py [--jobs 10] [--skip-bwrap] [--skip-oci]

Targets: containers p50 under 1.5 s to the first output, bwrap under 300 ms. The last line
is one JSON object: bwrap_first_output_ms_p50, oci_first_output_ms_p50,
oci_first_output_ms_p95, oci_teardown_ms_p50 (and bwrap_teardown_ms_p50; null when that
executor was skipped, with the reason under *_skipped), and shell_* as the floor.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "runner")]

from tests.runner.conftest import make_git_repo  # noqa: E402
from tests.runner.fake_plane import REGISTRATION_TOKEN, FakePlane  # noqa: E402
from tests.runner.oci import PYTHON_IMAGE, build_images, oci_problem  # noqa: E402

STEP = "date +%s.%N; true"  # first line: the step's own clock
LAST = "date +%s.%N"  # its last line: when the last step ended


class TimedPlane(FakePlane):
    """The fake control plane, noting when each lease was granted and each Complete came."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.granted: dict[str, float] = {}
        self.completed: dict[str, float] = {}

    def _lease(self, body):
        status, answer = super()._lease(body)
        if status == 200:
            self.granted[answer["lease_id"]] = time.time()
        return status, answer

    def _complete(self, lease, body, raw):
        self.completed.setdefault(lease.grant["lease_id"], time.time())
        return super()._complete(lease, body, raw)


def measure(executor: str, jobs: int, base: Path, repo: tuple[str, str]) -> dict[str, list]:
    plane = TimedPlane(runner_id=f"bench-{executor}-{os.getpid()}").start()
    dirs = Path(tempfile.mkdtemp(prefix=f"deltaci-bench-{executor}-", dir=base))
    dirs.chmod(0o755)
    argv = [sys.executable, "-m", "deltaci_runner", "--url", plane.url]
    argv += ["--registration-token", REGISTRATION_TOKEN, "--wait-seconds", "1"]
    argv += ["--state-dir", str(dirs / "state"), "--work-dir", str(dirs / "work")]
    argv += ["--cache-dir", str(dirs / "cache"), "--executor", executor]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELTACI_")}
    env["PYTHONPATH"] = str(ROOT / "runner")
    runner = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first, teardown = [], []
    try:
        for _ in range(jobs + 1):  # the first job warms the runner up and is not counted
            with plane.lock:
                plane.log.clear()
            grant = plane.add_job(*repo, [STEP, LAST], image=PYTHON_IMAGE)
            lease = grant["lease_id"]
            deadline = time.monotonic() + 120
            while lease not in plane.completed or not plane.log:
                if runner.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{executor} runner failed: {runner.stderr.read()[-2000:]}")
                time.sleep(0.02)
            time.sleep(0.3)  # the final log chunk follows the Complete's flush
            stamps = [float(x) for x in plane.log.decode().split() if _is_stamp(x)]
            if len(stamps) < 2 or plane.bodies("/complete")[-1]["status"] != "SUCCEEDED":
                raise SystemExit(f"{executor}: job failed: {plane.log.decode()[-2000:]}")
            first.append((stamps[0] - plane.granted[lease]) * 1000)
            teardown.append((plane.completed[lease] - stamps[-1]) * 1000)
    finally:
        runner.terminate()
        runner.wait(timeout=30)
        plane.stop()
        shutil.rmtree(dirs, ignore_errors=True)
    return {"first": first[1:], "teardown": teardown[1:]}


def _is_stamp(word: str) -> bool:
    head, dot, tail = word.partition(".")
    return bool(dot) and head.isdigit() and tail.isdigit() and len(head) == 10


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def bwrap_problem() -> str | None:
    if shutil.which("bwrap") is None:
        return "bwrap is not installed"
    from deltaci_runner.bwrap import BwrapExecutor
    from deltaci_runner.jobuser import resolve

    return BwrapExecutor(resolve()).probe()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--skip-bwrap", action="store_true")
    parser.add_argument("--skip-oci", action="store_true")
    args = parser.parse_args()
    jobs = max(1, min(args.jobs, 200))
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="deltaci-bench-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)
        made = make_git_repo(base / "repo")
        repo = (str(made.path), made.sha)
        plans = [
            ("bwrap", "skipped" if args.skip_bwrap else bwrap_problem()),
            ("oci", "skipped" if args.skip_oci else oci_problem()),
            ("shell", None),  # the floor: no isolation at all
        ]
        for executor, problem in plans:
            if problem is not None:
                print(f"{executor}: skipped ({problem})", file=sys.stderr)
                result.update({f"{executor}_first_output_ms_p50": None})
                result[f"{executor}_skipped"] = problem
                continue
            if executor == "oci":
                build_images()
            got = measure(executor, jobs, base, repo)
            print(f"{executor}: first output ms {sorted(got['first'])}", file=sys.stderr)
            result[f"{executor}_first_output_ms_p50"] = round(statistics.median(got["first"]), 1)
            result[f"{executor}_first_output_ms_p95"] = pct(got["first"], 0.95)
            result[f"{executor}_teardown_ms_p50"] = round(statistics.median(got["teardown"]), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
