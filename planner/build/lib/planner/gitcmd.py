"""The one way Delta CI runs git: a clean environment (nothing inherited can redirect
git to another repository or make it prompt), a bounded time, and errors that carry
git's own message. Both the planner's reader and the server's mirrors use it."""

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

NULL_SHA = "0" * 40  # git's "no commit": a created or deleted ref's other side
GIT_TIMEOUT = 600
_ENV_DROP = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_PREFIX",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_CEILING_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",  # with GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n below
        "GIT_EXTERNAL_DIFF",
        "GIT_EXEC_PATH",
    }
)


class GitError(Exception):
    """git failed in a way that is not an answer (not a repository, corrupt object,
    timed out, network refused)."""


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the variables that point git elsewhere, with
    prompts off and C locale output (parsed by code, never shown translated)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _ENV_DROP and not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    env.update(extra or {})
    return env


def decode(raw: bytes) -> str:
    """git output as text: invalid UTF-8 becomes backslash escapes, never an error."""
    return raw.decode("utf-8", "backslashreplace")


def run_git(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = GIT_TIMEOUT,
    ok_codes: Sequence[int] = (0,),
) -> tuple[int, bytes]:
    """(exit code, stdout) of ``git ARGS``; GitError when it cannot run, outlives
    ``timeout`` seconds or exits with a code not in ``ok_codes``."""
    argv = ["git", *args]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            env=dict(env) if env is not None else git_env(),
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {_verb(args)} timed out after {timeout:g}s") from exc
    except OSError as exc:
        raise GitError(f"git {_verb(args)} failed: {exc}") from exc
    if proc.returncode not in ok_codes:
        err = decode(proc.stderr).strip()[-500:]
        raise GitError(f"git {_verb(args)} failed ({proc.returncode}): {err}")
    return proc.returncode, proc.stdout


def _verb(args: Sequence[str]) -> str:
    """The subcommand of ``args``, skipping ``-C dir`` and ``-c key=value`` options."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c") else 1
    return args[i] if i < len(args) else "?"
