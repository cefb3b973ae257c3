"""Repository URLs: only https, ssh (URL and scp-like) and, in dev, local paths are
saved or fetched; git's helper forms (`fd::17` once hung a fetch for 600 s holding the
mirror lock, `ext::` runs commands) never reach git; and a fetch that hangs is killed,
with whatever it started, after DELTACI_GIT_TIMEOUT_SECONDS, releasing the lock."""

import fcntl
import io
import time

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from apps.runs.actions import RunError, do_add_repository
from apps.runs.models import Repository
from lib import gitmirror, repourl

GOOD = [
    "https://github.com/owner/repo.git",
    "https://git.example.com:8443/a/b",
    "ssh://git@github.com/owner/repo.git",
    "ssh://git@[::1]:2222/srv/repo",
    "git@github.com:owner/repo.git",
    "gitlab.example.com:group/repo",
]
BAD = [
    "fd::17",
    "ext::sh -c touch% /tmp/pwned",
    "ext::true",
    "transport::address",
    "http://github.com/owner/repo.git",
    "git://github.com/owner/repo.git",
    "ftp://example.com/repo",
    "https:///no-host",
    "https://-oProxyCommand=x/repo",
    "-oProxyCommand=evil:x",
    "git@github.com:-upload-pack=evil",
    "relative/path",
    "https://github.com/a b",
    "https://github.com/a\nb",
    "",
    "https://x/" + "a" * 600,
]
LOCAL = ["/srv/git/repo.git", "file:///srv/git/repo.git"]


@pytest.mark.parametrize("url", GOOD)
def test_it_allows_https_and_ssh_everywhere(url):
    assert repourl.problem(url, allow_local=False) is None
    assert repourl.problem(url, allow_local=True) is None


@pytest.mark.parametrize("url", BAD)
def test_it_refuses_everything_else(url):
    assert repourl.problem(url, allow_local=True)
    with pytest.raises(ValidationError):
        Repository(name="x", url=url).clean_fields()


@pytest.mark.parametrize("url", LOCAL)
def test_local_paths_only_in_dev(url, settings):
    assert repourl.problem(url, allow_local=True) is None
    assert "only in dev" in repourl.problem(url, allow_local=False)
    settings.DELTACI_ENV = "prod"
    assert "only in dev" in repourl.problem(url)
    assert repourl.allowed_protocols() == "https:ssh"


def test_add_repo_refuses_a_helper_url(db):
    with pytest.raises(CommandError, match="remote helpers"):
        call_command("add_repo", "evil", "--url", "fd::17", stdout=io.StringIO())
    with pytest.raises(RunError):
        do_add_repository("evil2", "ext::sh", actor="system")
    assert not Repository.objects.exists()


def test_a_stored_bad_url_is_never_fetched(tmp_path):
    started = time.monotonic()
    with pytest.raises(gitmirror.GitError, match="remote helpers"):
        gitmirror.sync_mirror(tmp_path, "evil", "fd::17")
    assert time.monotonic() - started < 5
    assert not (tmp_path / "evil.git").exists()


def test_git_itself_refuses_other_transports(tmp_path, settings):
    """Belt and braces: even a command that skipped the URL check cannot use fd:: or ext::."""
    settings.DELTACI_GIT_TIMEOUT_SECONDS = 20
    gitmirror._git(["init", "--bare", "--quiet", str(tmp_path / "m.git")])
    for url in ("fd::17", "ext::sh -c true"):
        with pytest.raises(gitmirror.GitError, match="not allowed"):
            gitmirror._git(["fetch", url, "HEAD"], cwd=tmp_path / "m.git")


def test_a_hanging_fetch_is_killed_with_its_children_and_frees_the_lock(
    tmp_path, settings, monkeypatch
):
    hang = tmp_path / "ssh-that-hangs"
    # The grandchild keeps git's stderr (our pipe) open: killing git alone would not end
    # the wait; the whole process group has to go.
    hang.write_text("#!/bin/sh\nsleep 300 &\nwait\n")
    hang.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(hang))
    settings.DELTACI_GIT_TIMEOUT_SECONDS = 2
    started = time.monotonic()
    with pytest.raises(gitmirror.GitError, match="timed out after 2s"):
        gitmirror.sync_mirror(tmp_path / "mirrors", "slow", "ssh://git@127.0.0.1/never.git")
    assert time.monotonic() - started < 20
    lock = tmp_path / "mirrors" / "slow.git.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: raises if still held


def test_a_waiter_gives_up_on_a_held_lock(tmp_path, settings):
    settings.DELTACI_GIT_TIMEOUT_SECONDS = 1
    path = gitmirror.mirror_path(tmp_path, "busy")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(gitmirror.GitError, match="busy"):
            gitmirror.sync_mirror(tmp_path, "busy", "https://127.0.0.1:9/none.git")
