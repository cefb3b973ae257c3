"""What a previous runner instance (or a finished job) left running.

While the runner lives it is a child subreaper (PR_SET_CHILD_SUBREAPER): whatever a job
double-forks is re-parented to the runner, not to init, so after each job every child
of the runner is a leftover, found without any cooperation from the job. After a crash
that link is gone; then processes whose working directory or environment points into a
job tree of the runner's work dir are found instead (job processes get HOME, TMPDIR and
their cwd inside `<work-dir>/job-XXXX/`). A job that changes directory and scrubs its
environment escapes that second sweep: the shell executor is for trusted code only
(bwrap sandboxes die with the runner, containers are removed by label).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
_subreaper = False


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux); False if refused.
    Only the runner's own process does this (never a host embedding the agent)."""
    global _subreaper
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        _subreaper = False
    return _subreaper


def children() -> list[int]:
    """Pids whose parent is this process."""
    own, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == own:
                    found.append(int(entry))
    return found


def kill_orphans() -> list[int]:
    """Between jobs the runner has no child of its own: SIGKILL every child (the orphans
    a job left, adopted as subreaper) and reap them. Nothing unless a subreaper."""
    if not _subreaper:
        return []
    killed = []
    for pid in children():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.02)
    return killed


def _points_into(pid: str, prefix: bytes) -> bool:
    try:
        if os.readlink(f"/proc/{pid}/cwd").encode().startswith(prefix):
            return True
    except OSError:
        pass
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return any(
        value.startswith(prefix)
        for _, _, value in (v.partition(b"=") for v in environ.split(b"\0"))
    )


def processes_under(prefix: Path) -> list[int]:
    """Pids (not this process) whose cwd or environment points under `prefix`."""
    needle = str(prefix).encode()
    own = str(os.getpid())
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and entry != own and _points_into(entry, needle)
    ]


def kill_under(prefix: Path, wait: float = 5.0) -> list[int]:
    """SIGKILL every process found under `prefix` (repeatedly: one may fork while we
    look), and wait for them to go. Returns the pids killed."""
    killed: list[int] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        found = processes_under(prefix)
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            if pid not in killed:
                killed.append(pid)
        time.sleep(0.05)
    return killed
