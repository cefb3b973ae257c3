"""A root Makefile with build/test/lint targets; read, never run."""

from tests.planner.conftest import codes_of, jobs, skipped

MAKEFILE = """
.PHONY: build test
CC := gcc
build: deps
\t$(CC) -o app main.c
test:: build
\t./app --selftest
"""


def test_root_makefile_targets(repo):
    repo.commit({"Makefile": MAKEFILE, "main.c": "int main(){}"})
    plan = repo.plan(None)
    steps = {n: j["steps"] for n, j in jobs(plan).items()}
    assert steps[".:build"] == ["make build"]
    assert steps[".:test"] == ["make test"]
    assert ".:lint" not in steps
    assert skipped(plan)[".:lint"]["reason_code"] == "NO_SCRIPT"
    assert skipped(plan)[".:lint"]["reason"] == "nothing to lint: no lint target"
    assert jobs(plan)[".:build"]["ecosystem"] == "make"


def test_makefile_without_targets_is_not_a_project(repo):
    repo.commit({"Makefile": "all:\n\techo hi\n", "go.mod": "module x\n"})
    assert set(codes_of(repo.plan(None))) == {"."}
    assert {j["ecosystem"] for j in jobs(repo.plan(None)).values()} == {"go"}


def test_root_makefile_shares_the_root_with_another_ecosystem(repo):
    base = repo.commit({"Makefile": MAKEFILE, "go.mod": "module x\n", "sub/go.mod": "module y\n"})
    names = set(jobs(repo.plan(None)))
    assert {".[go]:build", ".[make]:build", "sub:build"} <= names
    repo.commit({"Makefile": MAKEFILE + "lint:\n\ttrue\n"})
    assert set(codes_of(repo.plan(base)).values()) == {"GLOBAL_FILE_CHANGED"}
