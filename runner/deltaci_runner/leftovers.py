"""What a previous runner instance (or a finished job) left running: processes whose
working directory or environment points into a job tree of this runner's work dir.

Job processes get HOME, TMPDIR and their cwd inside `<work-dir>/job-XXXX/`, so they
can be found again after the runner that started them was SIGKILLed. A job that changes
directory and scrubs its environment escapes this sweep: the shell executor is for
trusted code only (bwrap and containers need no sweep: their sandboxes die with them).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


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
