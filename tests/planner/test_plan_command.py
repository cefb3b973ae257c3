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
    assert "c:build  [NOT_AFFECTED]  no change in c or its dependencies" in text
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
