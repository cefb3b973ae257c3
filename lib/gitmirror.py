"""The control plane's bare mirrors of repositories: clone once, fetch after. It only
reads git objects; it never checks out or runs repository code."""

import base64
import fcntl
import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
GIT_TIMEOUT = 600


class GitError(Exception):
    pass


def is_sha(value: str) -> bool:
    return bool(_SHA.match(value or ""))


def _git(
    args: list[str], *, cwd: Path | None = None, token: str = "", timeout: int = GIT_TIMEOUT
) -> str:
    cmd = ["git"]
    if token:
        # Sent as a header (not in the URL), so it never lands in git's config or errors.
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        cmd += ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        proc = subprocess.run(
            cmd + args,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} timed out after {timeout}s") from exc
    if proc.returncode != 0:
        raise GitError(f"git {args[0]} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
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
