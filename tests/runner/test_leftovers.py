"""A runner's job processes and job trees do not outlive it (issue #13, item 12)."""

from __future__ import annotations

from tests.runner.conftest import Repo, RunnerDirs, run_runner, start_runner
from tests.runner.fake_plane import FakePlane
from tests.runner.test_protocol import processes_with


def test_a_restarted_shell_runner_kills_and_removes_what_a_killed_one_left(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    steps = ["(setsid sleep 1000.791 &); echo started; sleep 1000.792"]
    plane.add_job(str(repo.path), repo.sha, steps)
    first = start_runner(plane, runner_dirs, "--executor", "shell")
    try:
        assert plane.wait_for(lambda: b"started" in plane.log)
        first.kill()  # SIGKILL: no cleanup of its own
        first.wait(timeout=10)
    finally:
        first.kill()
        first.communicate()
    # The step's shell dies with the runner (PR_SET_PDEATHSIG) ...
    assert plane.wait_for(lambda: not processes_with("1000.792"), timeout=5)
    # ... but what it double-forked into its own session survives, with the job tree.
    assert processes_with("1000.791")
    assert list(runner_dirs.work.glob("job-*"))
    second = start_runner(plane, runner_dirs, "--executor", "shell")
    try:
        assert plane.wait_for(lambda: not processes_with("1000.791"), timeout=10)
        assert plane.wait_for(lambda: not list(runner_dirs.work.glob("job-*")), timeout=10)
    finally:
        second.terminate()
        second.communicate(timeout=20)


def test_a_finished_job_leaves_no_background_process(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(str(repo.path), repo.sha, ["(setsid sleep 1000.793 &); echo ok"])
    result = run_runner(plane, runner_dirs, "--executor", "shell")
    assert result.returncode == 0, result.stderr
    assert plane.bodies("/complete")[0]["status"] == "SUCCEEDED"
    assert not processes_with("1000.793")
