"""Rust: Cargo workspaces with member globs, path and workspace dependencies."""

from tests.planner.conftest import codes_of, jobs

ROOT = """
[workspace]
members = ["crates/*", "tools/gen"]
exclude = ["crates/experimental"]

[workspace.dependencies]
core = { path = "crates/core" }
serde = "1"
"""


def _repo(repo):
    return repo.commit(
        {
            "Cargo.toml": ROOT,
            "Cargo.lock": "",
            "crates/core/Cargo.toml": '[package]\nname = "core"\n',
            "crates/core/src/lib.rs": "",
            "crates/app/Cargo.toml": (
                '[package]\nname = "app"\n\n[dependencies]\ncore = { workspace = true }\n'
                "serde = { workspace = true }\n"
            ),
            "crates/app/src/main.rs": "",
            "tools/gen/Cargo.toml": (
                '[package]\nname = "gen"\n\n'
                '[target."cfg(unix)".dev-dependencies]\napp = { path = "../../crates/app" }\n'
            ),
            "tools/gen/src/main.rs": "",
            "crates/experimental/Cargo.toml": '[package]\nname = "exp"\n',
        }
    )


def test_workspace_dependencies_resolve_through_the_root(repo):
    base = _repo(repo)
    repo.commit({"crates/core/src/lib.rs": "// x"})
    plan = repo.plan(base)
    assert codes_of(plan) == {
        "crates/core": "FILE_CHANGED",
        "crates/app": "DEPENDENCY_CHANGED",
        "tools/gen": "DEPENDENCY_CHANGED",
        "crates/experimental": "NOT_AFFECTED",
    }
    assert jobs(plan)["crates/app:test"]["steps"] == ["cargo test"]
    assert jobs(plan)["crates/app:build"]["image"] == "rust:1"


def test_root_manifest_and_lock_are_global(repo):
    base = _repo(repo)
    repo.commit({"Cargo.lock": "# new"})
    assert set(codes_of(repo.plan(base)).values()) == {"GLOBAL_FILE_CHANGED"}


def test_root_package_and_workspace_is_a_project_too(repo):
    base = repo.commit(
        {
            "Cargo.toml": '[package]\nname = "top"\n[dependencies]\nlib = { path = "lib" }\n'
            '[workspace]\nmembers = ["lib"]\n',
            "src/main.rs": "",
            "lib/Cargo.toml": '[package]\nname = "lib"\n',
            "lib/src/lib.rs": "",
        }
    )
    repo.commit({"lib/src/lib.rs": "//"})
    assert codes_of(repo.plan(base)) == {"lib": "FILE_CHANGED", ".": "DEPENDENCY_CHANGED"}
