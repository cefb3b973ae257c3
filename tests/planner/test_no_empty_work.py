"""No empty work: jobs with nothing to run are not planned (NO_SCRIPT), files no build
reads never widen a plan (NON_BUILD), and ci.ai.yaml's planning.ignore / planning.global
adjust that list, validated strictly."""

import json

import pytest

from planner import PlanError
from tests.planner.conftest import codes_of, jobs, package, skipped

FILES = {
    "api/go.mod": "module api\n",
    "web/package.json": json.dumps({"name": "web", "scripts": {"test": "vitest"}}),
    "stub/package.json": package({"name": "stub"}),
}


def test_a_job_without_a_script_is_skipped_with_no_script(repo):
    base = repo.commit(FILES)
    repo.commit({"web/a.ts": "1"})
    plan = repo.plan(base)
    assert set(jobs(plan)) == {"web:test"}
    assert jobs(plan)["web:test"]["needs"] == []  # no build job to wait for
    assert skipped(plan)["web:build"]["reason_code"] == "NO_SCRIPT"
    assert skipped(plan)["web:lint"]["reason"] == "nothing to lint: no lint script"


def test_full_mode_and_required_jobs_with_no_script(repo):
    base = repo.commit(FILES)
    repo.commit({"api/a.go": "package api\n"})
    plan = repo.plan(base, policy_kw={"planning_mode": "full"})
    assert {s["reason_code"] for s in plan.to_dict()["skipped"]} == {"NO_SCRIPT"}
    plan = repo.plan(base, policy_kw={"required_jobs": ["web:build"]})
    assert jobs(plan)["web:build"]["reason_code"] == "REQUIRED_BY_POLICY"
    assert jobs(plan)["web:build"]["steps"][-1] == "echo 'nothing to do: no build script'"


@pytest.mark.parametrize(
    "path", [".vscode/settings.json", ".idea/x.xml", ".editorconfig", ".github/FUNDING.yml",
             ".github/CODEOWNERS", ".github/ISSUE_TEMPLATE/bug.yml", "web/.vscode/launch.json"]
)  # fmt: skip
def test_files_no_build_reads_widen_nothing(repo, path):
    base = repo.commit(FILES)
    repo.commit({path: "x", "README.md": "y"})
    plan = repo.plan(base)
    assert jobs(plan) == {}
    assert set(codes_of(plan).values()) == {"NON_BUILD"}
    assert "no build reads" in skipped(plan)["api:test"]["reason"]
    assert "they widen nothing" in plan.explain


def test_non_build_next_to_a_real_change_only_runs_the_change(repo):
    base = repo.commit(FILES)
    repo.commit({".vscode/settings.json": "x", "api/a.go": "package api\n"})
    assert codes_of(repo.plan(base)) == {
        "api": "FILE_CHANGED", "web": "NOT_AFFECTED", "stub": "NOT_AFFECTED"
    }  # fmt: skip


PLANNING = """version: 1
planning:
  ignore: ['**/*.snap', 'Makefile']
  global: ['.editorconfig', 'tools/**']
"""


def test_planning_globs_in_ci_ai_yaml_tune_discovery(repo):
    base = repo.commit({**FILES, "ci.ai.yaml": PLANNING})
    repo.commit({"api/x.snap": "1", "Makefile": "x:\n"})
    assert jobs(repo.plan(base)) == {}
    repo.commit({".editorconfig": "root = true\n"})
    plan = repo.plan(repo.git("rev-parse", "HEAD~1"))
    assert set(codes_of(plan).values()) == {"GLOBAL_FILE_CHANGED"}
    assert plan.source == "discovery"


def test_planning_globs_apply_to_configured_jobs(repo):
    config = (
        "version: 1\nplanning: {ignore: ['src/**/*.snap'], global: ['toolchain.txt']}\n"
        "jobs:\n  t: {image: python:3.12, steps: [pytest], paths: ['src/**']}\n"
    )
    base = repo.commit({"ci.ai.yaml": config, "src/a.py": "1"})
    repo.commit({"src/a.snap": "1"})
    assert skipped(repo.plan(base))["t"]["reason_code"] == "PATHS_NOT_MATCHED"
    repo.commit({"toolchain.txt": "2"})
    plan = repo.plan(repo.git("rev-parse", "HEAD~1"))
    assert jobs(plan)["t"]["reason"] == "planning.global names toolchain.txt, so every job runs"


@pytest.mark.parametrize(
    ("planning", "problem"),
    [
        ("{ignore: 3}", "planning.ignore: must be a list of strings, got an integer"),
        ("{ignore: []}", "planning.ignore: must not be empty"),
        ("{ignor: ['a']}", "planning.ignor: unknown key (did you mean 'ignore'?)"),
        ("{global: ['../x']}", "planning.global[0]: must be a glob relative to the repository"),
        ("{global: ['/etc/*']}", "planning.global[0]: must be a glob relative to the repository"),
        ("[1]", "planning: must be a mapping, got a list"),
        ("{ignore: ['" + "a" * 5000 + "']}", "planning.ignore[0]: must be at most 4096"),
    ],
)
def test_planning_is_validated_strictly(repo, planning, problem):
    repo.commit({**FILES, "ci.ai.yaml": f"version: 1\nplanning: {planning}\n"})
    with pytest.raises(PlanError) as error:
        repo.plan(None)
    assert problem in str(error.value)


def test_too_many_planning_globs(repo):
    globs = ", ".join(f"'g{i}'" for i in range(501))
    repo.commit({"ci.ai.yaml": f"version: 1\nplanning: {{ignore: [{globs}]}}\n", **FILES})
    with pytest.raises(PlanError, match="planning.ignore: 501 globs, more than 500"):
        repo.plan(None)
