"""One git helper for the planner and the server's mirrors: one null sha, a clean
environment, bounded time."""

import pytest

from lib import gitmirror
from planner import git as planner_git
from planner.gitcmd import NULL_SHA, GitError, git_env, run_git


def test_one_spelling_of_the_null_sha_and_one_error_class():
    from apps.runs import planning
    from apps.vcs import webhooks

    assert gitmirror.NULL_SHA is NULL_SHA is planner_git.NULL_SHA is webhooks.NULL_SHA
    assert planning.gitmirror.NULL_SHA == "0" * 40
    assert gitmirror.GitError is GitError is planner_git.GitError


def test_inherited_git_variables_cannot_redirect_git(repo, tmp_path, monkeypatch):
    repo.commit({"a.txt": "1"})
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("GIT_DIR", str(other))
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.pager")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "touch /tmp/pwned")
    env = git_env()
    assert "GIT_DIR" not in env and "GIT_CONFIG_KEY_0" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    _, out = run_git(["-C", str(repo.path), "rev-parse", "--git-dir"])
    assert out.strip() == b".git"
    assert gitmirror.resolve(repo.path, "main") == repo.git("rev-parse", "HEAD")


def test_time_is_bounded_and_errors_name_the_subcommand(tmp_path):
    with pytest.raises(GitError, match=r"git rev-parse failed \(128\)"):
        run_git(["-C", str(tmp_path), "rev-parse", "HEAD"])
    with pytest.raises(GitError, match="git wait timed out after 0.2s"):
        run_git(["-C", str(tmp_path), "-c", "alias.wait=!sleep 3", "wait"], timeout=0.2)
