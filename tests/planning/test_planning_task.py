"""The planning task on real git repositories: base selection, persisted jobs (skipped
ones with reasons), PLAN_FAILED with visible problems, recipes, cancel while planning."""

import pytest

from apps.runs import engine
from apps.runs.actions import do_add_repository, do_create_run
from apps.runs.cancelling import do_cancel_run
from apps.runs.choices import JobState, RunState
from apps.runs.models import Recipe, Run
from apps.runs.planning import do_plan_run
from tests.gitrepo import GitRepo

CONFIG = """version: 1
jobs:
  build:
    image: python:3.12
    steps: ["echo build"]
  unit:
    image: python:3.12
    steps: ["echo unit"]
    needs: [build]
    paths: ["src/**"]
  docs:
    image: python:3.12
    steps: ["echo docs"]
    paths: ["docs/**"]
"""


@pytest.fixture
def mirror_dir(settings, tmp_path):
    settings.DELTACI_MIRROR_DIR = tmp_path / "mirrors"
    return settings.DELTACI_MIRROR_DIR


@pytest.fixture
def source(tmp_path):
    return GitRepo(tmp_path / "src-repo")


def _repo(source, name="proj"):
    return do_add_repository(name, str(source.path), actor="system")


def _plan(repo, **kw) -> Run:
    run, _ = do_create_run(repo, actor="system", **kw)
    do_plan_run(run.pk)  # on_commit dispatch does not fire inside the test transaction
    run.refresh_from_db()
    return run


def test_it_plans_a_push_against_before_and_persists_skipped_jobs(db, mirror_dir, source):
    first = source.commit({"ci.ai.yaml": CONFIG, "src/a.py": "a", "docs/x.md": "x"})
    second = source.commit({"src/a.py": "b"})
    run = _plan(
        _repo(source), trigger="push", ref="refs/heads/main", commit_sha=second, base_sha=first
    )
    assert run.state == RunState.QUEUED, run.plan_error
    assert run.plan["base_sha"] == first and run.plan["changed_paths"] == ["src/a.py"]
    assert run.plan["commit"] == {"author": "t", "subject": "change", "body": ""}
    jobs = {j.name: j for j in run.jobs.all()}
    assert jobs["build"].state == "QUEUED" and jobs["unit"].state == "PENDING"
    assert jobs["docs"].state == "SKIPPED" and jobs["docs"].reason_code == "PATHS_NOT_MATCHED"
    assert jobs["docs"].reason
    assert jobs["unit"].reason_code == "PATHS_MATCHED" and jobs["unit"].triggered_by == ["src/a.py"]
    assert jobs["build"].attempts.get().state == "QUEUED"


def test_it_runs_everything_when_the_branch_is_new(db, mirror_dir, source):
    sha = source.commit({"ci.ai.yaml": CONFIG, "src/a.py": "a"})
    run = _plan(
        _repo(source), trigger="push", ref="refs/heads/main", commit_sha=sha, base_sha="0" * 40
    )
    assert run.state == RunState.QUEUED
    assert "first push" in run.plan["fallback_reason"]
    assert not run.jobs.filter(state="SKIPPED").exists()


def test_it_diffs_a_pull_request_against_the_merge_base(db, mirror_dir, source):
    base = source.commit({"ci.ai.yaml": CONFIG, "src/a.py": "a", "docs/x.md": "x"})
    source.git("checkout", "-q", "-b", "feature")
    head = source.commit({"docs/x.md": "y"})
    source.git("checkout", "-q", "main")
    main_tip = source.commit({"src/a.py": "changed on main"})
    run = _plan(
        _repo(source),
        trigger="pull_request",
        ref="refs/heads/feature",
        commit_sha=head,
        base_sha=main_tip,
        pr_number=7,
    )
    assert run.state == RunState.QUEUED
    assert run.plan["base_sha"] == base  # the merge-base, not main's tip
    assert run.plan["changed_paths"] == ["docs/x.md"]
    assert set(run.jobs.filter(state="SKIPPED").values_list("name", flat=True)) == {"unit"}


def test_it_diffs_a_manual_run_against_the_last_successful_run_of_the_ref(db, mirror_dir, source):
    first = source.commit({"ci.ai.yaml": CONFIG, "src/a.py": "a", "docs/x.md": "x"})
    repo = _repo(source)
    done = _plan(repo, trigger="manual", ref="refs/heads/main", commit_sha=first)
    assert (
        done.plan["base_sha"] is None
        and "no previous successful run" in done.plan["fallback_reason"]
    )
    Run.objects.filter(pk=done.pk).update(state=RunState.SUCCESS)
    second = source.commit({"docs/x.md": "y"})
    run = _plan(repo, trigger="manual", ref="refs/heads/main", commit_sha=second)
    assert run.plan["base_sha"] == first
    assert set(run.jobs.exclude(state="SKIPPED").values_list("name", flat=True)) == {
        "build",
        "docs",
    }


def test_it_fails_planning_with_every_problem_listed(db, mirror_dir, source, admin_client):
    bad = (
        "version: 1\njobs:\n  a:\n    steps: []\n    bogus: 1\n"
        "  b:\n    image: x\n    steps: [ok]\n    needs: [zzz]\n"
    )
    sha = source.commit({"ci.ai.yaml": bad})
    run = _plan(_repo(source), trigger="manual", ref="refs/heads/main", commit_sha=sha)
    assert run.state == RunState.FAILED
    for fragment in ("jobs.a.image", "jobs.a.steps", "jobs.a.bogus", "jobs.b.needs"):
        assert fragment in run.plan_error
    body = admin_client.get(f"/api/v1/runs/{run.pk}").json()
    assert body["run"]["state"] == "FAILED" and "jobs.a.image" in body["run"]["plan_error"]
    assert run.events.filter(to_state="PLAN_FAILED").exists()


def test_it_fails_planning_when_the_repository_cannot_be_read(db, mirror_dir, tmp_path):
    repo = do_add_repository("gone", str(tmp_path / "does-not-exist"), actor="system")
    run = _plan(repo, trigger="manual", ref="refs/heads/main", commit_sha="b" * 40)
    assert run.state == RunState.FAILED and "could not read the repository" in run.plan_error


def test_it_fails_planning_when_nothing_is_discoverable(db, mirror_dir, source):
    sha = source.commit({"notes.txt": "hello"})
    run = _plan(_repo(source), trigger="manual", ref="refs/heads/main", commit_sha=sha)
    assert run.state == RunState.FAILED and "ci.ai.yaml" in run.plan_error


def test_it_refuses_images_the_policy_does_not_allow(db, mirror_dir, source):
    sha = source.commit({"ci.ai.yaml": CONFIG})
    repo = _repo(source)
    repo.policy.allowed_images = ["node:*"]
    repo.policy.save()
    run = _plan(repo, trigger="manual", ref="refs/heads/main", commit_sha=sha)
    assert run.state == RunState.FAILED and "python:3.12" in run.plan_error


def test_it_keeps_a_recipe_after_a_discovered_run_succeeds(
    db, mirror_dir, source, django_capture_on_commit_callbacks
):
    pyproject = '[project]\nname = "lib"\nversion = "0.1"\n'
    first = source.commit({"pyproject.toml": pyproject, "lib/__init__.py": ""})
    repo = _repo(source)
    run = _plan(repo, trigger="manual", ref="refs/heads/main", commit_sha=first)
    assert run.state == RunState.QUEUED and run.plan["source"] in ("discovery", "fallback")
    run.jobs.update(state=JobState.SUCCEEDED)  # the jobs' outcome is not the subject here
    with django_capture_on_commit_callbacks(execute=True):
        engine.advance_run(run, actor="system")  # finalises the run: SUCCESS keeps the recipe
    assert Run.objects.get(pk=run.pk).state == RunState.SUCCESS
    recipe = Recipe.objects.get(repository=repo)
    assert recipe.fingerprint == run.plan["fingerprint"]
    second = source.commit({"lib/__init__.py": "x = 1\n"})
    again = _plan(repo, trigger="manual", ref="refs/heads/main", commit_sha=second)
    assert again.plan["source"] == "recipe"
    third = source.commit({"pyproject.toml": pyproject + "# changed\n"})
    changed = _plan(repo, trigger="manual", ref="refs/heads/main", commit_sha=third)
    assert changed.plan["source"] != "recipe"


def test_it_finalises_a_run_cancelled_while_planning(db, mirror_dir, source):
    sha = source.commit({"ci.ai.yaml": CONFIG})
    run, _ = do_create_run(
        _repo(source), trigger="manual", ref="refs/heads/main", commit_sha=sha, actor="system"
    )
    assert do_cancel_run(run, actor="tester")
    do_plan_run(run.pk)
    run.refresh_from_db()
    assert run.state == RunState.CANCELED and not run.jobs.exists()


def test_it_creates_one_run_per_trigger_key(db, mirror_dir, source):
    sha = source.commit({"ci.ai.yaml": CONFIG})
    repo = _repo(source)
    a, created_a = do_create_run(
        repo, trigger="push", ref="refs/heads/main", commit_sha=sha, event_key="k1", actor="system"
    )
    b, created_b = do_create_run(
        repo, trigger="push", ref="refs/heads/main", commit_sha=sha, event_key="k1", actor="system"
    )
    assert created_a and not created_b and a.pk == b.pk


def test_it_diffs_a_manual_run_against_an_explicit_base(db, mirror_dir, source):
    first = source.commit({"ci.ai.yaml": CONFIG, "src/a.py": "a", "docs/x.md": "x"})
    second = source.commit({"docs/x.md": "y"})
    run = _plan(
        _repo(source), trigger="manual", ref="refs/heads/main", commit_sha=second, base_sha=first
    )
    assert run.plan["base_sha"] == first and run.plan["changed_paths"] == ["docs/x.md"]


def test_it_plans_a_project_nested_deeper_than_a_job_name_can_hold(db, mirror_dir, source):
    """Discovered job names are `<project path>:<kind>`; a path longer than the name column
    gets a shortened, still unique and stable name instead of failing the run."""
    deep = "/".join(f"segment-{i:02d}-of-a-very-deep-tree" for i in range(12))
    twin = deep[:-1] + "X"  # differs only at the end, which shortening keeps
    sha = source.commit({f"{deep}/go.mod": "module a\n", f"{twin}/go.mod": "module b\n"})
    run = _plan(_repo(source), trigger="manual", ref="refs/heads/main", commit_sha=sha)
    assert run.state == RunState.QUEUED, run.plan_error
    names = list(run.jobs.values_list("name", flat=True))
    assert len(names) == len(set(names)) == 6
    assert all(len(n) <= 255 for n in names)
    builds = {j.name: j for j in run.jobs.all() if j.name.endswith(":build")}
    assert len(builds) == 2
    for job in run.jobs.exclude(name__in=builds):
        assert job.needs and job.needs[0] in builds  # needs use the same short names
    again = _plan(_repo(source, name="proj2"), trigger="manual", ref="main", commit_sha=sha)
    assert sorted(again.jobs.values_list("name", flat=True)) == sorted(names)


def test_a_plan_the_database_refuses_fails_the_run_instead_of_leaving_it_planning(
    db, mirror_dir, source
):
    """A stored plan that no longer fits the tables (here a negative retry count in the
    plan a failed-only rerun reuses) ends the run FAILED with a reason; nothing stays
    PLANNING forever."""
    repo = _repo(source)
    sha = "b" * 40
    previous, _ = do_create_run(
        repo, trigger="manual", ref="refs/heads/main", commit_sha=sha, actor="system"
    )
    job = {"name": "unit", "image": "python:3.12", "steps": ["true"], "needs": [], "retries": -1}
    Run.objects.filter(pk=previous.pk).update(
        plan={"source": "config", "jobs": [job], "skipped": []}, state=RunState.FAILED
    )
    previous.jobs.create(name="unit", state="FAILED", spec=job)
    rerun, _ = do_create_run(
        repo,
        trigger="manual",
        ref="refs/heads/main",
        commit_sha=sha,
        rerun_of=previous,
        rerun_scope="failed",
        actor="system",
    )
    do_plan_run(rerun.pk)
    rerun.refresh_from_db()
    assert rerun.state == RunState.FAILED
    assert "could not store the plan" in rerun.plan_error
    assert not rerun.jobs.exists()
