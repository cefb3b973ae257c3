"""Lockfile-aware impact: a changed workspace lockfile impacts only the projects whose
resolved dependencies changed (LOCKFILE_CHANGED, naming the packages); one that cannot be
read widens the plan as any global file does."""

import json

import pytest

from tests.planner.conftest import codes_of, jobs, package


def npm_lock(lodash: str, chalk: str = "5.0.0") -> str:
    return json.dumps(
        {
            "lockfileVersion": 3,
            "packages": {
                "": {"workspaces": ["packages/*"]},
                "packages/a": {"dependencies": {"lodash": "^4"}},
                "packages/b": {"dependencies": {"chalk": "^5"}},
                "packages/c": {"dependencies": {"a": "*"}},
                "node_modules/a": {"link": True, "resolved": "packages/a"},
                "node_modules/lodash": {"version": lodash, "dependencies": {"tiny": "1"}},
                "node_modules/tiny": {"version": "1.0.0"},
                "node_modules/chalk": {"version": chalk},
            },
        }
    )


NPM = {
    "package.json": package({"name": "mono", "workspaces": ["packages/*"]}),
    "packages/a/package.json": package({"name": "a", "dependencies": {"lodash": "^4"}}),
    "packages/b/package.json": package({"name": "b", "dependencies": {"chalk": "^5"}}),
    "packages/c/package.json": package({"name": "c", "dependencies": {"a": "*"}}),
}


def test_package_lock_impacts_only_the_packages_that_resolve_the_change(repo):
    base = repo.commit({**NPM, "package-lock.json": npm_lock("4.17.20")})
    repo.commit({"package-lock.json": npm_lock("4.17.21")})
    plan = repo.plan(base)
    assert codes_of(plan) == {
        "packages/a": "LOCKFILE_CHANGED",
        "packages/b": "NOT_AFFECTED",
        "packages/c": "LOCKFILE_CHANGED",  # it resolves lodash through packages/a
    }
    assert jobs(plan)["packages/a:test"]["reason"] == (
        "package-lock.json changed what packages/a resolves (lodash)"
    )
    assert jobs(plan)["packages/a:test"]["triggered_by"] == ["package-lock.json"]


def test_a_transitive_change_reaches_the_importer(repo):
    lock = json.loads(npm_lock("4.17.20"))
    base = repo.commit({**NPM, "package-lock.json": json.dumps(lock)})
    lock["packages"]["node_modules/tiny"]["version"] = "1.0.1"
    repo.commit({"package-lock.json": json.dumps(lock)})
    assert codes_of(repo.plan(base))["packages/a"] == "LOCKFILE_CHANGED"


@pytest.mark.parametrize("broken", ["{", '{"lockfileVersion": 1}', "[1]"])
def test_an_unreadable_lockfile_widens_as_before(repo, broken):
    base = repo.commit({**NPM, "package-lock.json": npm_lock("4.17.20")})
    repo.commit({"package-lock.json": broken})
    assert set(codes_of(repo.plan(base)).values()) == {"GLOBAL_FILE_CHANGED"}


PNPM = """lockfileVersion: '9.0'
importers:
  .: {}
  apps/web:
    dependencies:
      react: {specifier: ^18, version: 18.2.0}
  apps/api:
    dependencies:
      fastify: {specifier: ^4, version: 4.0.0}
packages:
  react@18.2.0: {resolution: {integrity: sha512-x}}
  loose-envify@1.4.0: {resolution: {integrity: sha512-%s}}
  fastify@4.0.0: {resolution: {integrity: sha512-f}}
snapshots:
  react@18.2.0:
    dependencies:
      loose-envify: 1.4.0
  loose-envify@1.4.0: {}
  fastify@4.0.0: {}
"""


def test_pnpm_lock_by_importer(repo):
    files = {
        "package.json": package({"name": "mono"}),
        "pnpm-workspace.yaml": "packages: ['apps/*']\n",
        "apps/web/package.json": package({"name": "web"}),
        "apps/api/package.json": package({"name": "api"}),
    }
    base = repo.commit({**files, "pnpm-lock.yaml": PNPM % "a"})
    repo.commit({"pnpm-lock.yaml": PNPM % "b"})
    plan = repo.plan(base)
    assert codes_of(plan) == {"apps/web": "LOCKFILE_CHANGED", "apps/api": "NOT_AFFECTED"}
    assert "(loose-envify@1.4.0)" in jobs(plan)["apps/web:build"]["reason"]


YARN = """# yarn lockfile v1


"@scope/x@^1.0.0":
  version "1.0.0"
  dependencies:
    left-pad "^1.0.0"

left-pad@^1.0.0:
  version "%s"

other@^2:
  version "2.0.0"
"""


def test_yarn_classic_by_package_name(repo):
    files = {
        "package.json": package({"name": "mono", "workspaces": ["p/*"]}),
        "p/one/package.json": package({"name": "one", "dependencies": {"@scope/x": "^1.0.0"}}),
        "p/two/package.json": package({"name": "two", "dependencies": {"other": "^2"}}),
    }
    base = repo.commit({**files, "yarn.lock": YARN % "1.3.0"})
    repo.commit({"yarn.lock": YARN % "1.3.1"})
    plan = repo.plan(base)
    assert codes_of(plan) == {"p/one": "LOCKFILE_CHANGED", "p/two": "NOT_AFFECTED"}
    assert jobs(plan)["p/one:test"]["reason"].endswith("resolves (left-pad)")


def cargo_lock(serde: str) -> str:
    return f"""version = 3
[[package]]
name = "a"
version = "0.1.0"
dependencies = ["serde"]
[[package]]
name = "b"
version = "0.1.0"
dependencies = ["a"]
[[package]]
name = "c"
version = "0.1.0"
[[package]]
name = "serde"
version = "{serde}"
source = "registry+https://github.com/rust-lang/crates.io-index"
"""


def test_cargo_lock_by_crate(repo):
    files = {
        "Cargo.toml": '[workspace]\nmembers = ["a", "b", "c"]\n',
        "a/Cargo.toml": '[package]\nname = "a"\n[dependencies]\nserde = "1"\n',
        "b/Cargo.toml": '[package]\nname = "b"\n[dependencies]\na = { path = "../a" }\n',
        "c/Cargo.toml": '[package]\nname = "c"\n',
    }
    base = repo.commit({**files, "Cargo.lock": cargo_lock("1.0.1")})
    repo.commit({"Cargo.lock": cargo_lock("1.0.2")})
    plan = repo.plan(base)
    assert codes_of(plan) == {
        "a": "LOCKFILE_CHANGED",
        "b": "LOCKFILE_CHANGED",
        "c": "NOT_AFFECTED",
    }
    assert jobs(plan)["a:build"]["reason"] == "Cargo.lock changed what a resolves (serde 1.0.2)"


def uv_lock(attrs: str) -> str:
    return f"""version = 1
[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "packages/app" }}
dependencies = [{{ name = "attrs" }}]
[[package]]
name = "tool"
version = "0.1.0"
source = {{ editable = "packages/tool" }}
[[package]]
name = "attrs"
version = "{attrs}"
source = {{ registry = "https://pypi.org/simple" }}
"""


def test_uv_lock_by_member(repo):
    files = {
        "pyproject.toml": '[tool.uv.workspace]\nmembers = ["packages/*"]\n',
        "packages/app/pyproject.toml": '[project]\nname = "app"\ndependencies = ["attrs"]\n',
        "packages/tool/pyproject.toml": '[project]\nname = "tool"\n',
    }
    base = repo.commit({**files, "uv.lock": uv_lock("23.1.0")})
    repo.commit({"uv.lock": uv_lock("23.2.0")})
    assert codes_of(repo.plan(base)) == {
        "packages/app": "LOCKFILE_CHANGED",
        "packages/tool": "NOT_AFFECTED",
    }


def test_go_work_sum_by_required_module(repo):
    files = {
        "go.work": "go 1.22\nuse (\n\t./a\n\t./b\n)\n",
        "a/go.mod": "module a\nrequire github.com/x/y v1.0.0\n",
        "b/go.mod": "module b\n",
    }
    base = repo.commit({**files, "go.work.sum": "github.com/x/y v1.0.0 h1:aaa=\n"})
    repo.commit({"go.work.sum": "github.com/x/y v1.0.0 h1:bbb=\n"})
    assert codes_of(repo.plan(base)) == {"a": "LOCKFILE_CHANGED", "b": "NOT_AFFECTED"}


def test_hostile_lockfiles_never_raise(repo):
    base = repo.commit({**NPM, "package-lock.json": npm_lock("1")})
    deep = '{"packages": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for content in (deep, '{"packages": {"x": 1, "": [2]}}', "\xff", "null"):
        repo.commit({"package-lock.json": content})
        codes = set(codes_of(repo.plan(base)).values())
        assert codes <= {"GLOBAL_FILE_CHANGED", "LOCKFILE_CHANGED", "NOT_AFFECTED"}


def test_the_explanation_says_the_lockfile_was_read(repo):
    base = repo.commit({**NPM, "package-lock.json": npm_lock("4.17.20")})
    repo.commit({"package-lock.json": npm_lock("4.17.21")})
    explain = repo.plan(base).explain
    assert "Lockfiles changed (package-lock.json), read at both commits: 2 projects" in explain


def test_a_lockfile_over_the_limit_stays_global(repo, monkeypatch):
    from planner import lockfiles

    base = repo.commit({**NPM, "package-lock.json": npm_lock("4.17.20")})
    repo.commit({"package-lock.json": npm_lock("4.17.21")})
    monkeypatch.setattr(lockfiles, "MAX_LOCKFILE_BYTES", 100)
    assert set(codes_of(repo.plan(base)).values()) == {"GLOBAL_FILE_CHANGED"}
