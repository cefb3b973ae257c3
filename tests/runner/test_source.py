"""Fetching the source at the exact commit, with real git repositories."""

import os
import subprocess
from pathlib import Path

import pytest
from deltaci_runner import source

from tests.runner.conftest import GIT, Repo


def run_git(argv: list[str], env: dict[str, str]) -> int:
    return subprocess.run(argv, env=env, capture_output=True, check=False).returncode


def head(path: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_it_checks_out_the_exact_commit(repo: Repo, tmp_path: Path) -> None:
    dest = tmp_path / "ws"
    dest.mkdir()
    src = {"repo_url": str(repo.path), "ref": "refs/heads/main", "commit_sha": repo.sha}
    source.fetch(src, dest, run_git)
    assert head(dest) == repo.sha
    assert (dest / "README.md").read_text() == "hello from the test repo\n"


def test_it_falls_back_to_fetching_refs_when_a_bare_sha_is_refused(
    repo: Repo, tmp_path: Path
) -> None:
    """A pull request head reachable only from refs/pull/7/head, and a server refusing shas."""
    (repo.path / "pr.txt").write_text("from a fork\n")
    subprocess.run([*GIT, "-C", str(repo.path), "add", "pr.txt"], check=True)
    subprocess.run([*GIT, "-C", str(repo.path), "commit", "-qm", "pr"], check=True)
    pr_sha = head(repo.path)
    subprocess.run(["git", "-C", str(repo.path), "update-ref", "refs/pull/7/head", pr_sha])
    subprocess.run(["git", "-C", str(repo.path), "reset", "-q", "--hard", repo.sha], check=True)
    calls: list[list[str]] = []

    def refusing(argv: list[str], env: dict[str, str]) -> int:
        calls.append(argv)
        if "--depth" in argv:
            return 128  # what git exits with for "not our ref"
        return run_git(argv, env)

    dest = tmp_path / "ws"
    dest.mkdir()
    src = {"repo_url": str(repo.path), "ref": "refs/pull/7/head", "commit_sha": pr_sha}
    source.fetch(src, dest, refusing)
    assert head(dest) == pr_sha
    assert any("+refs/pull/7/head:refs/deltaci/ref" in argv for argv in calls)


def test_it_passes_a_clone_token_only_through_the_environment(tmp_path: Path) -> None:
    env = source.git_env("https://git.example/org/repo.git", "ghs_TOKEN123")
    header_key = "http.https://git.example/.extraHeader"
    assert env["GIT_CONFIG_KEY_2"] == header_key
    assert env["GIT_CONFIG_VALUE_2"] == f"Authorization: Basic {source.basic_auth('ghs_TOKEN123')}"
    calls: list[list[str]] = []
    src = {"repo_url": "https://git.example/org/repo.git", "commit_sha": "a" * 40}
    with pytest.raises(source.SourceError):
        source.fetch(src, tmp_path, lambda argv, env: calls.append(argv) or 1, "ghs_TOKEN123")
    assert not any("TOKEN" in part or "Basic" in part for argv in calls for part in argv)


@pytest.mark.parametrize(
    "bad",
    [
        {"repo_url": "--upload-pack=evil", "commit_sha": "a" * 40},
        {"repo_url": "/x", "commit_sha": "main"},
        {"repo_url": "", "commit_sha": "a" * 40},
    ],
)
def test_it_refuses_unusable_sources(bad: dict, tmp_path: Path) -> None:
    with pytest.raises(source.SourceError):
        source.fetch(bad, tmp_path, run_git)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the repository away")
def test_it_fetches_a_local_repository_owned_by_another_user(repo: Repo, tmp_path: Path) -> None:
    """git's safe.directory check would refuse it; the operator registered that path."""
    subprocess.run(["chown", "-R", "65534:65534", str(repo.path)], check=True)
    dest = tmp_path / "ws"
    dest.mkdir()
    source.fetch({"repo_url": str(repo.path), "commit_sha": repo.sha}, dest, run_git)
    assert head(dest) == repo.sha
