"""Every impact rule and reason code on one mixed monorepo (Go, Node, Python)."""

import pytest

from planner import PlanError, PlannerPolicy, plan_repository
from planner.codes import RUN_CODES, SKIP_CODES
from tests.planner.conftest import codes_of, jobs, package, skipped

FILES = {
    "README.md": "# mono\n",
    "notes.txt": "todo\n",
    ".ci/run.sh": "#!/bin/sh\n",
    "docs/guide.txt": "guide\n",
    "libs/core/go.mod": "module example.com/core\n",
    "libs/core/core.go": "package core\n",
    "svc/api/go.mod": "module example.com/api\nrequire example.com/core v0.0.0\n",
    "svc/api/main.go": "package main\n",
    "web/package.json": package({"name": "web"}),
    "web/index.js": "1\n",
    "web/README.md": "web\n",
    "site/package.json": package({"name": "site", "dependencies": {"web": "1"}}),
    "tools/py/pyproject.toml": '[project]\nname = "py"\n',
    "tools/py/x.py": "1\n",
}
EVERYONE = {"libs/core", "svc/api", "web", "site", "tools/py"}


@pytest.fixture
def base(repo):
    return repo.commit(FILES)


def test_file_and_transitive_dependency(repo, base):
    repo.commit({"libs/core/core.go": "package core // 2\n"})
    plan = repo.plan(base)
    assert codes_of(plan) == {
        "libs/core": "FILE_CHANGED",
        "svc/api": "DEPENDENCY_CHANGED",
        "web": "NOT_AFFECTED",
        "site": "NOT_AFFECTED",
        "tools/py": "NOT_AFFECTED",
    }
    assert plan.source == "discovery"
    assert plan.changed_paths == ["libs/core/core.go"]
    assert plan.fallback_reason is None


def test_docs_only_change_runs_nothing_and_says_so(repo, base):
    repo.commit({"README.md": "# new\n", "docs/guide.txt": "new\n", "web/README.md": "w\n"})
    plan = repo.plan(base)
    assert plan.to_dict()["jobs"] == []
    assert set(codes_of(plan).values()) == {"DOCS_ONLY"}
    assert "no test work" in skipped(plan)["web:test"]["reason"]
    assert "Only documentation changed" in plan.explain
    assert "still reports success" in plan.explain


def test_docs_inside_a_project_next_to_a_code_change(repo, base):
    repo.commit({"web/README.md": "w2\n", "tools/py/x.py": "2\n", "LICENSE": "MIT"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes["tools/py"] == "FILE_CHANGED"
    assert codes["web"] == "DOCS_ONLY"
    assert (
        skipped(plan)["web:build"]["reason"] == "only documentation changed in web (web/README.md)"
    )
    assert codes["libs/core"] == "NOT_AFFECTED"


def test_a_project_under_docs_is_built(repo, base):
    repo.commit({"docs/package.json": package({"name": "docs-site"})})
    base = repo.git("rev-parse", "HEAD")
    repo.commit({"docs/intro.md": "hi\n"})
    assert codes_of(repo.plan(base))["docs"] == "FILE_CHANGED"


@pytest.mark.parametrize("path", [".ci/run.sh", ".tool-versions", "ci.ai.yaml.bak"])
def test_global_and_unknown_files_expand_to_everything(repo, base, path):
    repo.commit({path: "x\n"})
    plan = repo.plan(base)
    code = "UNKNOWN_IMPACT" if path.endswith(".bak") else "GLOBAL_FILE_CHANGED"
    assert set(codes_of(plan).values()) == {code}
    assert set(codes_of(plan)) == EVERYONE
    assert all(j["triggered_by"] == [path] for j in plan.to_dict()["jobs"])


def test_unknown_path_explains_itself(repo, base):
    repo.commit({"notes.txt": "done\n"})
    plan = repo.plan(base)
    reason = jobs(plan)["web:test"]["reason"]
    assert reason.startswith("no rule explains notes.txt")
    assert "never shrinks" in reason
    assert "No rule explains notes.txt" in plan.explain


def test_renames_count_old_and_new_path(repo, base):
    repo.move("libs/core/core.go", "tools/py/core.go")
    repo.commit()
    plan = repo.plan(base)
    assert plan.changed_paths == ["libs/core/core.go", "tools/py/core.go"]
    codes = codes_of(plan)
    assert codes["libs/core"] == "FILE_CHANGED"
    assert codes["svc/api"] == "DEPENDENCY_CHANGED"
    assert codes["tools/py"] == "FILE_CHANGED"
    assert codes["web"] == "NOT_AFFECTED"


def test_deletions_count(repo, base):
    repo.commit({"web/index.js": None})
    codes = codes_of(repo.plan(base))
    assert codes["web"] == "FILE_CHANGED"
    assert codes["site"] == "DEPENDENCY_CHANGED"


def test_deleting_a_project_expands(repo, base):
    repo.commit({"tools/py/pyproject.toml": None})
    plan = repo.plan(base)
    assert set(codes_of(plan).values()) == {"UNKNOWN_IMPACT"}


def test_unreadable_manifest_plans_its_ecosystem_in_full(repo, base):
    repo.commit({"site/package.json": "{not json", "tools/py/x.py": "3\n"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes["tools/py"] == "FILE_CHANGED"
    assert codes["site"] == "FILE_CHANGED"  # its own manifest changed
    assert codes["web"] == "MANIFEST_UNREADABLE"
    assert codes["libs/core"] == "NOT_AFFECTED"
    assert "invalid JSON at line 1" in jobs(plan)["web:build"]["reason"]
    assert plan.fallback_reason.startswith("manifest unreadable: site/package.json")
    assert "site/package.json could not be read" in plan.explain


@pytest.mark.parametrize(
    ("base_of", "reason"),
    [
        (lambda r: None, "no base commit to compare with"),
        (lambda r: "0" * 40, "first push of a branch: the base is the null commit"),
        (lambda r: "1234567890" * 4, "base 123456789012 is not in the repository"),
        (lambda r: "no-such-ref", "base no-such-ref is not in the repository"),
    ],
)
def test_diff_unavailable_plans_everything(repo, base, base_of, reason):
    plan = repo.plan(base_of(repo))
    assert set(codes_of(plan).values()) == {"DIFF_UNAVAILABLE"}
    assert plan.fallback_reason == f"diff unavailable: {reason}"
    assert plan.source == "fallback"
    assert plan.base_sha is None
    assert plan.changed_paths == []


def test_force_push_base_that_is_not_an_ancestor(repo, base):
    repo.git("checkout", "-q", "-b", "other")
    gone = repo.commit({"web/index.js": "gone\n"})
    repo.git("checkout", "-q", "main")
    repo.commit({"web/index.js": "kept\n"})
    plan = repo.plan(gone)
    assert set(codes_of(plan).values()) == {"DIFF_UNAVAILABLE"}
    assert "is not an ancestor of head" in plan.fallback_reason


def test_any_ancestor_base_gives_a_diff(repo, base):
    """A base that is head's first parent needs no merge-base check; a grandparent or a
    merge's second parent still gets one, and all of them diff."""
    repo.git("checkout", "-q", "-b", "side")
    side = repo.commit({"tools/py/x.py": "2\n"})
    repo.git("checkout", "-q", "main")
    parent = repo.commit({"web/index.js": "2\n"})
    repo.git(
        "-c", "user.email=t@t", "-c", "user.name=t", "merge", "-q", "--no-ff", "-m", "m", "side"
    )
    for old, changed in [
        (parent, ["tools/py/x.py"]),  # the first parent
        (side, ["web/index.js"]),  # the second parent
        (base, ["tools/py/x.py", "web/index.js"]),  # a grandparent
    ]:
        plan = repo.plan(old)
        assert plan.base_sha == old and plan.source == "discovery"
        assert plan.changed_paths == changed


def test_control_plane_can_force_diff_unavailable(repo, base):
    repo.commit({"web/index.js": "2\n"})
    plan = repo.plan(base, diff_unavailable_reason="no previous successful run of main")
    assert set(codes_of(plan).values()) == {"DIFF_UNAVAILABLE"}
    assert "no previous successful run of main" in jobs(plan)["web:test"]["reason"]


def test_empty_diff_skips_everything(repo, base):
    plan = repo.plan(base, base)
    assert plan.to_dict()["jobs"] == []
    assert {s["reason"] for s in plan.to_dict()["skipped"]} == {
        "no files changed between base and head"
    }


def test_full_mode_skips_nothing_but_shows_impact(repo, base):
    repo.commit({"libs/core/core.go": "package core // 3\n"})
    plan = repo.plan(base, policy_kw={"planning_mode": "full"})
    codes = codes_of(plan)
    assert plan.to_dict()["skipped"] == []
    assert codes["libs/core"] == "FILE_CHANGED"
    assert codes["web"] == "POLICY_FULL"
    assert jobs(plan)["web:test"]["reason"] == (
        "planning mode is full, so it runs although no change in web or its dependencies"
    )


def test_required_jobs_run_with_what_they_need(repo, base):
    repo.commit({"libs/core/core.go": "package core // 4\n"})
    plan = repo.plan(base, policy_kw={"required_jobs": ["web:test", "svc/api:lint"]})
    run = jobs(plan)
    assert run["web:test"]["reason_code"] == "REQUIRED_BY_POLICY"
    assert run["web:build"]["reason_code"] == "NEEDED_BY"
    assert run["web:build"]["reason"].startswith("needed by web:test, which runs because")
    assert "web:lint" in skipped(plan)
    assert run["svc/api:lint"]["required"] is True
    assert run["svc/api:lint"]["reason_code"] == "DEPENDENCY_CHANGED"


def test_policy_limits_and_images(repo, base):
    with pytest.raises(PlanError, match="policy.required_jobs: 'nope:test' is not a job"):
        repo.plan(None, policy_kw={"required_jobs": ["nope:test"]})
    with pytest.raises(PlanError, match="plan: 15 jobs, more than the policy limit of 10"):
        repo.plan(None, policy_kw={"max_jobs": 10})
    with pytest.raises(PlanError) as error:
        repo.plan(None, policy_kw={"allowed_images": ["golang:*", "node:*"]})
    assert str(error.value).splitlines() == [
        "tools/py:build.image: image 'python:3.12' is not allowed by the repository policy "
        "(allowed: golang:*, node:*)",
        "tools/py:test.image: image 'python:3.12' is not allowed by the repository policy "
        "(allowed: golang:*, node:*)",
        "tools/py:lint.image: image 'python:3.12' is not allowed by the repository policy "
        "(allowed: golang:*, node:*)",
    ]


def test_nothing_discoverable_names_what_was_looked_for(repo):
    repo.commit({"hello.txt": "hi", "requirements.txt": "x"})
    with pytest.raises(PlanError) as error:
        repo.plan(None)
    message = str(error.value)
    for name in (
        "go.mod",
        "package.json",
        "pyproject.toml",
        "Cargo.toml",
        "pom.xml",
        "settings.gradle",
        "*.sln",
        "*.csproj",
        "Makefile",
        "add a ci.ai.yaml",
    ):
        assert name in message


def test_bad_repository_or_head(repo, base, tmp_path):
    with pytest.raises(PlanError, match="head_sha: 'deadbeef' is not a commit"):
        repo.plan(None, head="deadbeef")
    with pytest.raises(PlanError, match="is not a git repository"):
        plan_repository(str(tmp_path), "HEAD", None, PlannerPolicy())


def test_plan_shape_is_a_dag_with_uniform_jobs(repo, base):
    repo.commit({"notes.txt": "x"})
    data = repo.plan(base).to_dict()
    assert set(data) == {
        "version",
        "source",
        "fingerprint",
        "base_sha",
        "head_sha",
        "changed_paths",
        "jobs",
        "skipped",
        "fallback_reason",
        "explain",
        "policies",
    }
    keys = {
        "name",
        "project",
        "ecosystem",
        "image",
        "workdir",
        "steps",
        "needs",
        "required",
        "allow_failure",
        "retries",
        "timeout_seconds",
        "artifacts",
        "caches",
        "reason_code",
        "reason",
        "triggered_by",
        "runs_on",
        "env",
        "secrets",
        "limits",
    }
    names = [j["name"] for j in data["jobs"]]
    assert len(names) == len(set(names))
    for job in data["jobs"]:
        assert set(job) == keys
        assert job["reason_code"] in RUN_CODES and job["reason"]
        assert all(need in names for need in job["needs"])
    for skip in data["skipped"]:
        assert skip["reason_code"] in SKIP_CODES and skip["reason"]
    assert "\n" not in data["explain"]
    assert data["fingerprint"].startswith("sha256:") and len(data["fingerprint"]) == 71
