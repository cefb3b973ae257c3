"""The control plane's bare mirrors of repositories: clone once, fetch after. It only
reads git objects; it never checks out or runs repository code. Only the URLs
lib/repourl allows are fetched, and every git command (with anything it started) is
killed after DELTACI_GIT_TIMEOUT_SECONDS."""

import base64
import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from lib import repourl
from planner.gitcmd import NULL_SHA, GitError, decode, git_env, run_git

__all__ = ["NULL_SHA", "GitError"]  # the shared spellings, re-exported
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def is_sha(value: str) -> bool:
    return bool(_SHA.match(value or ""))


def git_timeout() -> int:
    return int(settings.DELTACI_GIT_TIMEOUT_SECONDS)


def _git(args: list[str], *, cwd: Path | None = None, token: str = "") -> str:
    cmd: list[str] = []
    if token:
        # Sent as a header (not in the URL), so it never lands in git's config or errors.
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        cmd += ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    env = git_env(
        {
            "GIT_ALLOW_PROTOCOL": repourl.allowed_protocols(),
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        }
    )
    return decode(run_git(cmd + args, cwd=cwd, env=env, timeout=git_timeout())[1])


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """The mirror's lock, waited for at most one git timeout (its holder's git command is
    killed by then, so a longer wait means something is wrong)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as fh:
        deadline = time.monotonic() + git_timeout()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    busy = f"mirror {path.name} is busy (locked by another fetch)"
                    raise GitError(busy) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def mirror_path(mirror_dir: Path, name: str) -> Path:
    return Path(mirror_dir) / (_SAFE_NAME.sub("_", name) + ".git")


def sync_mirror(
    mirror_dir: Path, name: str, url: str, *, token: str = "", refs: list[str] | None = None
) -> Path:
    """Make sure the bare mirror of `url` exists and has the latest branches, tags and
    the given extra refs (e.g. `refs/pull/2/head`). Serialised per repository."""
    try:
        repourl.check(url)
    except ValueError as exc:
        raise GitError(str(exc)) from None
    path = mirror_path(mirror_dir, name)
    with _locked(path):
        if not (path / "HEAD").exists():
            _git(["init", "--bare", "--quiet", str(path)])
            _git(["config", "remote.origin.url", url], cwd=path)
        else:
            _git(["config", "remote.origin.url", url], cwd=path)
        specs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        specs += [
            f"+{r}:{r}" for r in refs or [] if r.startswith("refs/") and r not in ("refs/heads/*",)
        ]
        _git(
            ["fetch", "--quiet", "--prune", "--no-write-fetch-head", "origin", *specs],
            cwd=path,
            token=token,
        )
    return path


def fetch_commit(path: Path, sha: str, *, token: str = "") -> None:
    """Fetch one commit by id when no ref reaches it (force-pushed away, PR heads)."""
    if has_commit(path, sha):
        return
    _git(["fetch", "--quiet", "--no-write-fetch-head", "origin", sha], cwd=path, token=token)


def has_commit(path: Path, sha: str) -> bool:
    if not is_sha(sha):
        return False
    try:
        _git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=path)
        return True
    except GitError:
        return False


def resolve(path: Path, ref: str) -> str:
    """The commit a ref (branch, tag, full ref or sha) names in the mirror."""
    if ref.startswith("-"):
        raise GitError(f"invalid ref {ref!r}")
    candidates = (
        [ref]
        if ref.startswith("refs/") or is_sha(ref)
        else [f"refs/heads/{ref}", f"refs/tags/{ref}", ref]
    )
    for cand in candidates:
        try:
            return _git(
                ["rev-parse", "--verify", "--quiet", f"{cand}^{{commit}}"], cwd=path
            ).strip()
        except GitError:
            continue
    raise GitError(f"ref {ref!r} not found")


def is_ancestor(path: Path, commit: str, ref: str) -> bool:
    """Whether `commit` is reachable from `ref` (a full ref). Any error counts as no."""
    if not is_sha(commit) or not ref.startswith("refs/"):
        return False
    try:
        _git(["merge-base", "--is-ancestor", commit, ref], cwd=path)
        return True
    except GitError:
        return False


def merge_base(path: Path, a: str, b: str) -> str | None:
    try:
        return _git(["merge-base", a, b], cwd=path).strip() or None
    except GitError:
        return None


def commit_summary(path: Path, sha: str) -> dict[str, str]:
    """A commit's author and message for the run page ({} when git cannot say)."""
    if not is_sha(sha):
        return {}
    try:
        out = _git(["log", "-1", "--no-show-signature", "--format=%an%x00%s%x00%b", sha], cwd=path)
    except GitError:
        return {}
    author, subject, body = (out.split("\x00", 2) + ["", ""])[:3]
    return {"author": author[:200], "subject": subject[:500], "body": body.strip()[:4000]}
