"""Fetch the job's source at exactly `source.commit_sha`.

`git init` + `git fetch --depth 1 <url> <sha>`; when the server refuses to
serve a bare sha, fall back to fetching the ref and the branches. A clone
token travels as an `http.extraHeader` through GIT_CONFIG_* environment
variables: never in argv (visible in `ps`), never in .git/config, and its
value is masked in the job log.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RunFn = Callable[[list[str], dict[str, str]], int]
"""Runs a git command (argv, env) with its output in the job log; returns the exit code."""

SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
REF = re.compile(r"^refs/[A-Za-z0-9._/+-]+$")


class SourceError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def basic_auth(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def git_env(repo_url: str, clone_token: str | None) -> dict[str, str]:
    """A hermetic environment for git: no user/system config, no prompts, no exotic transports."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": os.devnull,
        "GIT_CONFIG_KEY_1": "advice.detachedHead",
        "GIT_CONFIG_VALUE_1": "false",
    }
    parts = urlsplit(repo_url)
    if clone_token and parts.scheme in ("http", "https"):
        env["GIT_CONFIG_COUNT"] = "3"
        env["GIT_CONFIG_KEY_2"] = f"http.{parts.scheme}://{parts.netloc}/.extraHeader"
        env["GIT_CONFIG_VALUE_2"] = f"Authorization: Basic {basic_auth(clone_token)}"
    return env


def local_repo(url: str) -> str | None:
    """The directory of a local repository URL (a path or file://), else None."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return parts.path
    if not parts.scheme and url.startswith(("/", "./", "../")):
        return os.path.abspath(url)
    return None


def _trust_local_repo(path: str) -> str:
    """Global git config trusting the operator-registered local repository, even when another
    user owns it (git's `safe.directory` is only honoured from global or system config)."""
    quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
    quoted_git = quoted[:-1] + '/.git"'
    return f"[safe]\n\tdirectory = {quoted}\n\tdirectory = {quoted_git}\n"


def validate(source: dict[str, Any]) -> tuple[str, str, str]:
    url = str(source.get("repo_url") or "")
    sha = str(source.get("commit_sha") or "").lower()
    ref = str(source.get("ref") or "")
    if not url or url.startswith("-") or "\n" in url:
        raise SourceError(f"unusable repo_url {url!r}")
    if not SHA.match(sha):
        raise SourceError(f"commit_sha {sha!r} is not a full hex sha")
    if ref and not REF.match(ref):
        ref = ""  # only used for the fallback fetch; a strange ref is ignored, not trusted
    return url, sha, ref


def fetch(source: dict[str, Any], dest: Path, run: RunFn, clone_token: str | None = None) -> None:
    """Leave `dest` checked out, detached, at the exact commit; raise SourceError otherwise."""
    url, sha, ref = validate(source)
    env = git_env(url, clone_token)
    with tempfile.NamedTemporaryFile("w", prefix="deltaci-git-", suffix=".cfg") as config:
        local = local_repo(url)
        if local:
            config.write(_trust_local_repo(local))
            config.flush()
            env["GIT_CONFIG_GLOBAL"] = config.name
        _fetch(url, sha, ref, dest, run, env)


def _fetch(url: str, sha: str, ref: str, dest: Path, run: RunFn, env: dict[str, str]) -> None:
    git = ["git", "-C", str(dest)]

    def must(argv: list[str], what: str) -> None:
        rc = run(argv, env)
        if rc != 0:
            raise SourceError(f"{what} failed (exit {rc})", exit_code=rc)

    must(["git", "init", "-q", str(dest)], "git init")
    must([*git, "remote", "add", "origin", url], "git remote add")
    if run([*git, "fetch", "-q", "--no-tags", "--depth", "1", "origin", sha], env) != 0:
        refspecs = ["+refs/heads/*:refs/remotes/origin/*"]
        if ref:
            refspecs.append(f"+{ref}:refs/deltaci/ref")
        must([*git, "fetch", "-q", "--no-tags", "origin", *refspecs], "git fetch")
    must([*git, "checkout", "-q", "--detach", sha], f"git checkout {sha[:12]}")
