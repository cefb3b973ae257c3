"""Manifests are untrusted: oversize, malformed, bombs and code never crash the planner
or run anything; they make their ecosystem plan in full, with the reason."""

import json

import pytest

from tests.planner.conftest import codes_of, jobs, package

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<project><artifactId>&lol2;</artifactId></project>
"""


HOSTILE = {
    "huge": ("x/package.json", "{" + " " * (2 * 1024 * 1024) + "}", "larger than 1024 KiB"),
    "deep-json": ("x/package.json", "[" * 200_000 + "]" * 200_000, "nested too deeply"),
    "bad-json": ("x/package.json", '{"name": "x",}', "invalid JSON at line 1"),
    "json-list": ("x/package.json", "[1, 2]", "package.json is not a JSON object"),
    "bad-toml": ("x/Cargo.toml", "[package\nname = 1", "invalid TOML"),
    "dup-toml": ("x/pyproject.toml", "[project]\nname = 'a'\nname = 'b'\n", "invalid TOML"),
    "bad-xml": ("x/pom.xml", "<project><artifactId>x</project>", "invalid XML at line 1"),
    "xml-bomb": ("x/pom.xml", LAUGHS, "refused XML: DTDForbidden"),
    "bad-csproj": ("x/A.csproj", "<Project", "invalid XML"),
    "not-utf8": ("x/go.mod", b"module \xff\xfe\n", "not UTF-8"),
    "bad-ini": ("x/setup.cfg", "no section header\n", "invalid INI"),
    "yaml-alias": ("pnpm-workspace.yaml", "a: &a [1]\nb: *a\n", "aliases (*name) are not allowed"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_manifests_become_unreadable_with_a_reason(repo, case):
    path, content, message = HOSTILE[case]
    base = repo.commit(
        {"ok/go.mod": "module ok\n", "ok/pkg/package.json": package({"name": "p"}), path: content}
    )
    repo.commit({"ok/main.go": "package ok\n"})
    plan = repo.plan(base)
    assert message in plan.fallback_reason
    codes = codes_of(plan)
    assert codes["ok"] == "FILE_CHANGED"
    assert "MANIFEST_UNREADABLE" in codes.values()
    unreadable = [j for j in plan.to_dict()["jobs"] if j["reason_code"] == "MANIFEST_UNREADABLE"]
    assert all(message in j["reason"] and j["triggered_by"] for j in unreadable)


def test_repository_code_is_never_run(repo, tmp_path):
    marker = tmp_path / "pwned"
    payload = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n"
    repo.commit(
        {
            "setup.py": payload,
            "Makefile": f"build:\n\ttouch {marker}\ntest:\n\ttouch {marker}\n",
            "package.json": json.dumps(
                {"name": "p", "scripts": {"preinstall": f"touch {marker}", "test": "jest"}}
            ),
            "build.gradle": f'"touch {marker}".execute()\n',
            ".git-hooks/post-checkout": f"touch {marker}",
        }
    )
    plan = repo.plan(None)
    assert not marker.exists()
    assert {j["ecosystem"] for j in jobs(plan).values()} == {"make", "node", "python", "java"}


def test_many_manifests_in_one_batch(repo):
    files = {f"p{i:03}/package.json": package({"name": f"p{i}"}) for i in range(300)}
    files["p000/package.json"] = package({"name": "p0", "dependencies": {"p299": "1"}})
    base = repo.commit(files)
    repo.commit({"p299/x.js": "1"})
    codes = codes_of(repo.plan(base))
    assert codes["p299"] == "FILE_CHANGED" and codes["p000"] == "DEPENDENCY_CHANGED"
    assert sum(c == "NOT_AFFECTED" for c in codes.values()) == 298


def test_dependency_cycles_and_self_overrides_plan_without_looping(repo):
    base = repo.commit(
        {
            "Cargo.toml": '[workspace]\nmembers = ["a", "b"]\n[patch.crates-io]\n'
            'a = { path = "a" }\nb = { path = "b" }\n',
            "a/Cargo.toml": '[package]\nname = "a"\n[dependencies]\nb = "1"\na = "1"\n',
            "b/Cargo.toml": '[package]\nname = "b"\n[dependencies]\na = "1"\n',
            "x/package.json": package({"name": "x", "dependencies": {"y": "link:../y"}}),
            "y/package.json": package({"name": "y", "dependencies": {"x": "file:../x"}}),
        }
    )
    repo.commit({"a/src/lib.rs": "//", "y/i.js": "1"})
    codes = codes_of(repo.plan(base))
    assert codes == {
        "a": "FILE_CHANGED", "b": "DEPENDENCY_CHANGED",
        "y": "FILE_CHANGED", "x": "DEPENDENCY_CHANGED",
    }  # fmt: skip


def test_a_lockfile_symlink_and_a_lockfile_cycle_never_raise(repo, tmp_path):
    lock = '{"packages": {"": {}, "p": {"dependencies": {"q": "1"}}, "node_modules/q": '
    lock += '{"version": "%s", "dependencies": {"q": "1"}}}}'
    files = {
        "package.json": package({"name": "m", "workspaces": ["p"]}),
        "p/package.json": package({"name": "p", "dependencies": {"q": "1"}}),
    }
    base = repo.commit({**files, "package-lock.json": lock % "1"})
    repo.commit({"package-lock.json": lock % "2"})
    assert codes_of(repo.plan(base)) == {"p": "LOCKFILE_CHANGED"}
    outside = tmp_path / "lock.json"
    outside.write_text(lock % "3")
    (repo.path / "package-lock.json").unlink()
    (repo.path / "package-lock.json").symlink_to(outside)
    repo.commit()
    codes = codes_of(repo.plan(repo.git("rev-parse", "HEAD~1")))
    assert codes == {"p": "GLOBAL_FILE_CHANGED"}  # a symlink out is not read: global
