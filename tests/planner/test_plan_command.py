"""``manage.py plan``: the preview on any local checkout, no database involved."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.planner.conftest import package

ROOT = Path(__file__).resolve().parents[2]
FILES = {
    "a/package.json": package({"name": "a"}),
    "b/package.json": package({"name": "b", "dependencies": {"a": "1"}}),
    "c/go.mod": "module c\n",
}


def run(*args: str) -> str:
    out = StringIO()
    call_command("plan", *args, stdout=out)
    return out.getvalue()


def test_it_explains_a_plan_against_the_parent_by_default(repo):
    repo.commit(FILES)
    repo.commit({"a/x.js": "1"})
    text = run("--repo", str(repo.path))
    assert "Runs (6 jobs):" in text
    assert "b:test  [DEPENDENCY_CHANGED]" in text
    assert "why:   a changed (a/x.js) and b depends on a" in text
    assert "Skipped (3 jobs):\n  NOT_AFFECTED: 3 jobs\n      c:build  no change in c" in text
    assert "… and 2 more (-v lists them all)" in text
    verbose = run("--repo", str(repo.path), "-v")
    assert "      c:lint  no change in c or its dependencies" in verbose
    assert "more (-v lists them all)" not in verbose
    assert "Explanation: Planned from discovered projects" in text


def test_it_prints_the_plan_json(repo):
    base = repo.commit(FILES)
    head = repo.commit({"c/m.go": "package c\n"})
    data = json.loads(run("--repo", str(repo.path), "--head", head, "--base", base, "--json"))
    assert data["base_sha"] == base and data["head_sha"] == head
    assert {j["name"] for j in data["jobs"]} == {"c:build", "c:test", "c:lint"}
    full = json.loads(run("--repo", str(repo.path), "--no-base", "--json"))
    assert full["source"] == "fallback" and len(full["jobs"]) == 9


def test_invalid_config_exits_2_with_every_problem(repo):
    repo.commit({"ci.ai.yaml": "version: 1\njobs:\n  t: {image: 3, steps: []}\n"})
    with pytest.raises(CommandError) as error:
        run("--repo", str(repo.path))
    assert error.value.returncode == 2
    assert "jobs.t.image: must be a string, got an integer" in str(error.value)
    assert "jobs.t.steps: must not be empty" in str(error.value)


def test_real_exit_code_and_stderr(repo):
    repo.commit({"ci.ai.yaml": "version: 1\njobs:\n  t: {image: busybox, steps: [x]}\n"})
    proc = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "plan",
            "--repo",
            str(repo.path),
            "--allowed-image",
            "python:*",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "jobs.t.image: image 'busybox' is not allowed by the repository policy" in proc.stderr
    assert proc.stdout == ""


def test_it_plans_this_very_repository():
    data = json.loads(run("--repo", str(ROOT), "--json"))
    assert data["head_sha"] and data["explain"]


def test_an_unknown_base_or_head_exits_2_instead_of_planning_everything(repo):
    repo.commit(FILES)
    for option in ("--base", "--head"):
        with pytest.raises(CommandError) as error:
            run("--repo", str(repo.path), option, "no-such-ref")
        assert error.value.returncode == 2
        assert f"{option}: 'no-such-ref' is not a commit in the repository" in str(error.value)


def test_a_path_that_is_not_a_repository_exits_2(tmp_path):
    with pytest.raises(CommandError) as error:
        run("--repo", str(tmp_path))
    assert error.value.returncode == 2 and "is not a git repository" in str(error.value)


@pytest.mark.django_db
def test_a_registered_repository_is_previewed_against_the_servers_base(repo, settings, tmp_path):
    from apps.runs.actions import do_add_repository
    from apps.runs.choices import RunState, Trigger
    from apps.runs.models import Run

    settings.DELTACI_MIRROR_DIR = tmp_path / "mirrors"
    first = repo.commit(FILES)
    green = repo.commit({"c/m.go": "package c\n"})
    repo.commit({"a/x.js": "2"})
    registered = do_add_repository("proj", str(repo.path), actor="system")
    with pytest.raises(CommandError) as error:
        run("--repo", "nope")
    assert error.value.returncode == 2 and "'nope' is neither a registered" in str(error.value)
    data = json.loads(run("--repo", "proj", "--json"))  # no successful run yet: full plan
    assert (
        data["base_sha"] is None
        and "no previous successful run of refs/heads/main" in (data["fallback_reason"])
    )
    Run.objects.create(
        repository=registered, trigger=Trigger.MANUAL, ref="refs/heads/main",
        commit_sha=green, state=RunState.SUCCESS, event_key="t:1",
    )  # fmt: skip
    data = json.loads(run("--repo", "proj", "--json"))
    assert data["base_sha"] == green and data["changed_paths"] == ["a/x.js"]
    data = json.loads(run("--repo", "proj", "--json", "--base", first))
    assert data["changed_paths"] == ["a/x.js", "c/m.go"]
    with pytest.raises(CommandError) as error:
        run("--repo", "proj", "--base", "0" * 40)
    assert error.value.returncode == 2
