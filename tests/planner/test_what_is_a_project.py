"""What a project is: manifests under another project's examples, fixtures or tests
belong to it unless a workspace names them; stray package.json files are not projects."""

from tests.planner.conftest import codes_of, jobs, package


def test_examples_and_fixtures_belong_to_the_enclosing_crate(repo):
    base = repo.commit(
        {
            "Cargo.toml": '[package]\nname = "top"\n',
            "src/lib.rs": "",
            "examples/demo/Cargo.toml": '[package]\nname = "demo"\n'
            '[dependencies]\nutil = { path = "../../util" }\n',
            "examples/demo/src/main.rs": "",
            "tests/fixtures/app/package.json": package({"name": "fixture-app"}),
            "my-examples/x/go.mod": "module x\n",
            "util/Cargo.toml": '[package]\nname = "util"\n',
        }
    )
    plan = repo.plan(None)
    assert set(codes_of(plan)) == {".", "util"}
    repo.commit({"examples/demo/src/main.rs": "fn main() {}", "tests/fixtures/app/a.js": "1"})
    plan = repo.plan(base)
    assert codes_of(plan) == {".": "FILE_CHANGED", "util": "NOT_AFFECTED"}
    head = repo.commit({"util/src/lib.rs": "//"})
    plan = repo.plan(repo.git("rev-parse", "HEAD~1"), head)  # the example's dependency
    assert codes_of(plan) == {".": "DEPENDENCY_CHANGED", "util": "FILE_CHANGED"}


def test_a_workspace_member_under_examples_stays_a_project(repo):
    repo.commit(
        {
            "Cargo.toml": '[package]\nname = "top"\n[workspace]\nmembers = ["examples/*"]\n',
            "examples/demo/Cargo.toml": '[package]\nname = "demo"\n',
            "testdata/go.mod": "module td\n",  # the root crate's test data
        }
    )
    assert set(codes_of(repo.plan(None))) == {".", "examples/demo"}


def test_a_fixture_with_no_enclosing_project_is_a_project(repo):
    repo.commit({"fixtures/a/go.mod": "module a\n", "examples/b/package.json": package({})})
    assert set(codes_of(repo.plan(None))) == {"fixtures/a", "examples/b"}


def test_package_json_outside_the_workspaces_is_not_a_project(repo):
    base = repo.commit(
        {
            "package.json": package({"name": "mono", "workspaces": ["packages/*"]}),
            "package-lock.json": "{}",
            "packages/ui/package.json": package({"name": "ui"}),
            "packages/ui/esm/package.json": '{"type": "module"}',  # entry-point stub
            "packages/ui/src/index.js": "1",
            "tools/lint-config/package.json": package({"name": "cfg"}),  # not a member
            "tools/standalone/package.json": package({"name": "alone"}),
            "tools/standalone/package-lock.json": "{}",  # its own install: a project
        }
    )
    assert set(codes_of(repo.plan(None))) == {"packages/ui", "tools/standalone"}
    repo.commit({"packages/ui/esm/package.json": '{"type": "module", "x": 1}'})
    plan = repo.plan(base)
    assert jobs(plan)["packages/ui:test"]["reason_code"] == "FILE_CHANGED"
    assert codes_of(plan)["tools/standalone"] == "NOT_AFFECTED"
