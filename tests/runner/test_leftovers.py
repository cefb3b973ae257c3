"""A runner's job processes and job trees do not outlive it (issue #13, item 12)."""

from __future__ import annotations

from tests.runner.conftest import (
    Repo,
    RunnerDirs,
    kill_once_started,
    restart_until,
    run_runner,
)
from tests.runner.fake_plane import FakePlane
from tests.runner.test_protocol import processes_with


def test_a_restarted_shell_runner_kills_and_removes_what_a_killed_one_left(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    steps = ["(setsid sleep 1000.791 &); echo started; sleep 1000.792"]
    plane.add_job(str(repo.path), repo.sha, steps)
    kill_once_started(plane, runner_dirs, "--executor", "shell")
    # The step's shell dies with the runner (PR_SET_PDEATHSIG) ...
    assert plane.wait_for(lambda: not processes_with("1000.792"), timeout=5)
    # ... but what it double-forked into its own session survives, with the job tree.
    assert processes_with("1000.791")
    assert list(runner_dirs.work.glob("job-*"))
    restart_until(
        plane, runner_dirs, "--executor", "shell", gone=lambda: not processes_with("1000.791")
    )


def test_a_finished_job_leaves_no_background_process(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    plane.add_job(str(repo.path), repo.sha, ["(setsid sleep 1000.793 &); echo ok"])
    result = run_runner(plane, runner_dirs, "--executor", "shell")
    assert result.returncode == 0, result.stderr
    assert plane.bodies("/complete")[0]["status"] == "SUCCEEDED"
    assert not processes_with("1000.793")


def test_a_background_process_that_left_its_tree_and_environment_is_killed_too(
    plane: FakePlane, repo: Repo, runner_dirs: RunnerDirs
) -> None:
    """Found as an orphan the runner adopted (child subreaper), not by any marker."""
    step = "(setsid sh -c 'cd /; exec env -i sleep 1000.794' &); echo ok"
    plane.add_job(str(repo.path), repo.sha, [step])
    result = run_runner(plane, runner_dirs, "--executor", "shell")
    assert result.returncode == 0, result.stderr
    assert plane.bodies("/complete")[0]["status"] == "SUCCEEDED"
    assert not processes_with("1000.794")
