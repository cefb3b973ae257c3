"""Git plumbing only: bare mirrors, odd file names, symlinks; the repository is never
modified and no repository code runs."""

import json
import os
import subprocess

import pytest

from tests.planner.conftest import GIT_ENV, codes_of, jobs, package


def _tree(path):
    return sorted(
        (os.path.relpath(os.path.join(d, f), path), os.path.getmtime(os.path.join(d, f)))
        for d, _, files in os.walk(path)
        for f in files
    )


def test_bare_mirror_plans_like_the_checkout(repo, tmp_path):
    base = repo.commit({"a/go.mod": "module a\n", "b/go.mod": "module b\nrequire a v0\n"})
    repo.move("a/go.mod", "a/sub/go.mod")
    repo.commit({"b/main.go": "package main\n"})
    bare = tmp_path / "mirror.git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True, env=GIT_ENV
    )
    before = _tree(bare)
    from planner import PlannerPolicy, plan_repository

    plan = plan_repository(str(bare), "HEAD", base, PlannerPolicy())
    assert plan.to_json() == repo.plan(base).to_json()
    assert plan.changed_paths == ["a/go.mod", "a/sub/go.mod", "b/main.go"]
    assert _tree(bare) == before


ODD = {
    "my app/package.json": package({"name": "my-app"}),
    "my app/x y.js": "1",
    "new\nline/go.mod": "module nl\n",
    "new\nline/m.go": "package nl\n",
    "ünïcødé/Cargo.toml": '[package]\nname = "u"\n',
    "tab\there/pyproject.toml": "",
    'quote"s/\\back/setup.py': "",
}


def test_odd_file_names(repo):
    base = repo.commit(ODD)
    repo.commit(
        {
            "my app/x y.js": "2",
            "new\nline/m.go": "package nl // 2\n",
            "ünïcødé/src/lib.rs": "",
            "tab\there/a b.py": "",
            'quote"s/\\back/x.py': "",
        }
    )
    plan = repo.plan(base)
    assert codes_of(plan) == {
        "my app": "FILE_CHANGED",
        "new\nline": "FILE_CHANGED",
        "ünïcødé": "FILE_CHANGED",
        "tab\there": "FILE_CHANGED",
        'quote"s/\\back': "FILE_CHANGED",
    }
    assert "ünïcødé/src/lib.rs" in plan.changed_paths
    assert jobs(plan)["new\nline:test"]["workdir"] == "new\nline"
    assert json.loads(plan.to_json())["changed_paths"] == plan.changed_paths


@pytest.mark.skipif(os.name != "posix", reason="needs byte file names")
def test_non_utf8_file_names_stay_valid_text(repo):
    base = repo.commit({"go.mod": "module m\n"})
    (repo.path / "sub").mkdir()
    with open(os.path.join(bytes(repo.path / "sub"), b"bad\xff.go"), "w") as handle:
        handle.write("package m\n")
    repo.commit()
    plan = repo.plan(base)
    assert plan.changed_paths == ["sub/bad\\xff.go"]
    plan.to_json().decode("utf-8")


def test_symlinked_manifests_are_followed_only_inside_the_repository(repo, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    base = repo.commit(
        {
            "a/package.json": package({"name": "a"}),
            "shared/pkg.json": package({"name": "c", "dependencies": {"a": "1"}}),
        }
    )
    (repo.path / "b").mkdir()
    (repo.path / "b/package.json").symlink_to(outside)
    (repo.path / "c").mkdir()
    (repo.path / "c/package.json").symlink_to("../shared/pkg.json")
    repo.commit({"a/x.js": "2"})
    plan = repo.plan(base)
    assert "b/package.json (a symlink to a path outside the repository)" in plan.fallback_reason
    middle = repo.commit({"b/package.json": package({"name": "b"})})
    repo.commit({"a/x.js": "3"})
    codes = codes_of(repo.plan(middle))
    assert codes == {"a": "FILE_CHANGED", "c": "DEPENDENCY_CHANGED", "b": "NOT_AFFECTED"}


def test_tiny_read_chunks_give_the_same_plan(repo, monkeypatch):
    """The tree listing is filtered as it streams; batch boundaries must not matter."""
    from planner import git

    files = {f"p{i:02}/package.json": package({"name": f"p{i}"}) for i in range(40)}
    files.update({f"p{i:02}/tab\there/go.mod": "module t\n" for i in range(0, 40, 7)})
    base = repo.commit(files)
    repo.commit({"p07/x.js": "1", "p14/tab\there/m.go": "package t\n"})
    expected = repo.plan(base).to_json()
    monkeypatch.setattr(git, "_CHUNK", 64)
    assert repo.plan(base).to_json() == expected


def test_the_listing_filter_finds_build_files_by_their_whole_name():
    """The listing is scanned reversed: names at the start and end of a batch, at the
    root (after the tab) and below it count; a name that only ends like one does not."""
    from planner.discovery import candidate_records, select_build_files
    from planner.git import entry

    oid = "0" * 40
    paths = [
        "package.json",  # first record of the batch, at the root
        "a/go.mod",
        "a/notgo.mod",
        "b/x\tpackage.json",  # a tab inside the file name
        "c\td/Cargo.toml",  # a tab inside a directory name
        "d/App.csproj",
        "e/ci.ai.yaml",
        "ci.ai.yaml",
        "f/src/main.go",
        "pyproject.toml",  # last record of the batch
    ]
    batch = b"".join(f"100644 blob {oid}\t{p}\0".encode() for p in paths)
    records = candidate_records(batch, also=frozenset({"ci.ai.yaml"}))
    found = sorted(entry(r).path for r in records)
    assert found == sorted(
        ["package.json", "a/go.mod", "b/x\tpackage.json", "c\td/Cargo.toml", "d/App.csproj",
         "e/ci.ai.yaml", "ci.ai.yaml", "pyproject.toml"]
    )  # fmt: skip
    read, present = select_build_files(found)
    assert read == ["a/go.mod", "c\td/Cargo.toml", "d/App.csproj", "package.json", "pyproject.toml"]
    assert present == []


def test_the_plans_cat_file_resolves_revisions_like_rev_parse(repo):
    """Head and base are resolved by the plan's cat-file, not a git process each: the
    answers must be rev-parse's (``Git.resolve_commit``) for every kind of name."""
    from planner.git import Git

    first = repo.commit({"go.mod": "module m\n"})
    repo.commit({"m.go": "package m\n"})
    repo.git("tag", "-a", "-m", "annotated", "v1", first)
    repo.git("tag", "light")
    names = [
        "HEAD", "main", "main~1", "HEAD^", first, first[:10], "v1", "light",
        "refs/heads/main", "main@{0}", "main^{/c}", "main^{tree}", "main:go.mod", "HEAD~9",
        "no-such-ref", "-x", "", "0" * 40, "main ", "HEAD:", "main..HEAD", "\udcff",
    ]  # fmt: skip
    git = Git(str(repo.path))
    with git.blobs() as reader:
        answers = {name: reader.commit(name) for name in names}
    assert answers == {name: git.resolve_commit(name) for name in names}
    assert answers["v1"] == first and answers["main^{tree}"] is None


def test_a_plan_leaves_no_cyclic_garbage(repo):
    """Planning pauses the cyclic collector: anything it leaves in a reference cycle
    (a parsed manifest kept alive by the reading thread's callback, say) is freed only
    by the next collection, which then walks all of it."""
    import gc

    base = repo.commit(
        {
            "a/package.json": package({"name": "a"}),
            "b/go.mod": "module b\n",
            "c/pyproject.toml": '[project]\nname = "c"\n',
            "d/pom.xml": "<project><artifactId>d</artifactId></project>",
        }
    )
    repo.commit({"a/x.js": "1"})
    recipe = repo.plan(base).recipe
    gc.collect()
    gc.disable()
    try:
        plans = [repo.plan(base), repo.plan(base, recipe=recipe), repo.plan(base, recipe={})]
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert [p.source for p in plans] == ["discovery", "recipe", "discovery"]
