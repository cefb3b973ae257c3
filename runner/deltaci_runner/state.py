"""Persisted registration, so a restarted runner keeps its identity instead of re-registering.

The file holds the runner token: it is written with mode 0600 inside a 0700
directory, atomically (temp file + rename), and never logged.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILENAME = "registration.json"


@dataclass(frozen=True)
class Registration:
    url: str
    runner_id: str
    token: str
    lease_ttl_seconds: float = 120
    heartbeat_interval_seconds: float = 20


def load(state_dir: Path, url: str) -> Registration | None:
    """The stored registration for this control plane URL, or None."""
    try:
        data = json.loads((state_dir / FILENAME).read_text())
        reg = Registration(**data)
    except (OSError, ValueError, TypeError):
        return None
    return reg if reg.url == url else None


def save(state_dir: Path, reg: Registration) -> None:
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    tmp = state_dir / f".{FILENAME}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(asdict(reg)).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, state_dir / FILENAME)


def clear(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / FILENAME).unlink()
