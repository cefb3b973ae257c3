"""Go: go.mod modules, go.work, local replaces and intra-repo requires."""

from tests.planner.conftest import codes_of, jobs

GO_WORK = "go 1.22\n\nuse (\n\t./libs/core\n\t./svc/api\n\t./svc/worker\n)\n"
CORE = "module example.com/core\n\ngo 1.21.5\n"
API = """module example.com/api // the api

go 1.22

require (
\texample.com/core v0.0.0 // indirect
\tgithub.com/pkg/errors v0.9.1
)
"""
WORKER = """module example.com/worker
go 1.22
require example.com/other v1.0.0
replace example.com/other => ../../libs/other
"""
OTHER = "module example.com/other\n"


def _repo(repo):
    return repo.commit(
        {
            "go.work": GO_WORK,
            "libs/core/go.mod": CORE,
            "libs/core/core.go": "package core\n",
            "libs/other/go.mod": OTHER,
            "libs/other/o.go": "package other\n",
            "svc/api/go.mod": API,
            "svc/api/main.go": "package main\n",
            "svc/worker/go.mod": WORKER,
            "svc/worker/main.go": "package main\n",
        }
    )


def test_it_follows_requires_to_dependents(repo):
    base = _repo(repo)
    repo.commit({"libs/core/core.go": "package core\n// x\n"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes["libs/core"] == "FILE_CHANGED"
    assert codes["svc/api"] == "DEPENDENCY_CHANGED"
    assert codes["svc/worker"] == "NOT_AFFECTED"
    assert codes["libs/other"] == "NOT_AFFECTED"
    api = jobs(plan)["svc/api:test"]
    assert api["reason"] == (
        "libs/core changed (libs/core/core.go) and svc/api depends on libs/core"
    )
    assert api["triggered_by"] == ["libs/core/core.go"]
    assert api["steps"] == ["go test ./..."]
    assert api["workdir"] == "svc/api"
    assert jobs(plan)["libs/core:build"]["image"] == "golang:1.21"


def test_it_follows_local_replaces(repo):
    base = _repo(repo)
    repo.commit({"libs/other/o.go": "package other\n// y\n"})
    codes = codes_of(repo.plan(base))
    assert codes["svc/worker"] == "DEPENDENCY_CHANGED"
    assert codes["svc/api"] == "NOT_AFFECTED"


def test_go_work_is_global(repo):
    base = _repo(repo)
    repo.commit({"go.work": GO_WORK + "\n"})
    plan = repo.plan(base)
    assert set(codes_of(plan).values()) == {"GLOBAL_FILE_CHANGED"}
    assert plan.to_dict()["skipped"] == []


def test_a_go_mod_without_module_is_unreadable(repo):
    base = _repo(repo)
    repo.commit({"libs/other/go.mod": "go 1.22\n", "svc/api/main.go": "package main\n//\n"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes["svc/api"] == "FILE_CHANGED"
    assert codes["libs/core"] == "MANIFEST_UNREADABLE"
    assert "libs/other/go.mod (no module directive)" in jobs(plan)["libs/core:build"]["reason"]
    assert "manifest unreadable: libs/other/go.mod" in plan.fallback_reason


def test_go_work_replace_applies_to_every_module_requiring_the_path(repo):
    base = repo.commit(
        {
            "go.work": "go 1.22\n\nuse (\n\t./svc/a\n\t./svc/b\n)\n\n"
            "replace github.com/up/log v1.2.0 => ./third_party/log\n",
            "third_party/log/go.mod": "module github.com/up/log\n",
            "svc/a/go.mod": "module example.com/a\n\nrequire github.com/up/log v1.2.0\n",
            "svc/b/go.mod": "module example.com/b\n\nrequire github.com/other v1\n",
            "svc/c/go.mod": "module example.com/c\n\nreplace github.com/z => ./vendor/z\n",
            "svc/c/vendor/z/go.mod": "module github.com/z\n",
        }
    )
    repo.commit({"third_party/log/log.go": "package log\n", "svc/c/vendor/z/z.go": "package z\n"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes["svc/a"] == codes["svc/c"] == "DEPENDENCY_CHANGED"
    assert codes["svc/b"] == "NOT_AFFECTED"
    assert jobs(plan)["svc/a:build"]["reason"].endswith(
        "svc/a depends on third_party/log through replace in go.work"
    )
    assert jobs(plan)["svc/c:build"]["reason"].endswith("through replace in go.mod")


def test_a_replace_leaving_the_repository_widens_the_go_plan(repo):
    base = repo.commit(
        {
            "a/go.mod": "module a\n\nreplace example.com/x => ../../x\n",
            "b/go.mod": "module b\n",
        }
    )
    repo.commit({"a/a.go": "package a\n"})
    plan = repo.plan(base)
    assert codes_of(plan) == {"a": "FILE_CHANGED", "b": "MANIFEST_UNREADABLE"}
    assert "replace example.com/x points outside the repository (../../x)" in plan.fallback_reason
