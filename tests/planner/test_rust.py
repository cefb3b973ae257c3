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
    repo.commit({"Cargo.lock": "[[package"})  # unreadable: global, as before
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


PATCHED_ROOT = """
[workspace]
members = ["crates/*", "vendor/serde"]

[patch.crates-io]
serde = { path = "vendor/serde" }

[replace]
"log:0.4.0" = { path = "vendor/log" }
"""


def test_patch_and_replace_make_every_user_of_the_name_a_dependent(repo):
    base = repo.commit(
        {
            "Cargo.toml": PATCHED_ROOT,
            "vendor/serde/Cargo.toml": '[package]\nname = "serde"\n',
            "vendor/serde/src/lib.rs": "",
            "vendor/log/Cargo.toml": '[package]\nname = "log"\n',
            "vendor/log/src/lib.rs": "",
            "crates/a/Cargo.toml": '[package]\nname = "a"\n[dependencies]\nserde = "1.0"\n',
            "crates/b/Cargo.toml": (
                '[package]\nname = "b"\n[target."cfg(windows)".build-dependencies]\n'
                'serde = { version = ">=0.9", features = ["x"] }\n'
            ),
            "crates/c/Cargo.toml": '[package]\nname = "c"\n[dev-dependencies]\nlog = "0.4"\n',
            "crates/d/Cargo.toml": '[package]\nname = "d"\n[dependencies]\nrand = "1"\n',
        }
    )
    repo.commit({"vendor/serde/src/lib.rs": "// x"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes["crates/a"] == codes["crates/b"] == "DEPENDENCY_CHANGED"
    assert codes["crates/c"] == codes["crates/d"] == "NOT_AFFECTED"
    assert jobs(plan)["crates/a:build"]["reason"] == (
        "vendor/serde changed (vendor/serde/src/lib.rs) and crates/a depends on "
        "vendor/serde through [patch.crates-io]"
    )
    repo.commit({"vendor/log/src/lib.rs": "// x"})
    plan = repo.plan(repo.git("rev-parse", "HEAD~1"))
    assert codes_of(plan)["crates/c"] == "DEPENDENCY_CHANGED"
    assert jobs(plan)["crates/c:test"]["reason"].endswith("through [replace]")


def test_a_patch_pointing_outside_the_repository_widens_the_rust_plan(repo):
    base = repo.commit(
        {
            "Cargo.toml": '[workspace]\nmembers = ["a", "b"]\n[patch.crates-io]\n'
            'serde = { path = "../../serde" }\n',
            "a/Cargo.toml": '[package]\nname = "a"\n',
            "b/Cargo.toml": '[package]\nname = "b"\n',
        }
    )
    repo.commit({"a/src/lib.rs": "//"})
    plan = repo.plan(base)
    assert codes_of(plan) == {"a": "FILE_CHANGED", "b": "MANIFEST_UNREADABLE"}
    assert "[patch.crates-io] serde points outside the repository" in plan.fallback_reason
