"""The unprivileged identity job processes run as.

A runner started as root never runs job code as root: steps, cache archiving
and sandbox start-up drop to this user (`Popen(user=, group=, extra_groups=[])`).
A runner started as an ordinary user runs jobs as itself.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CANDIDATES = ("deltaci-job", "nobody")


class JobUserError(Exception):
    pass


@dataclass(frozen=True)
class JobUser:
    name: str
    uid: int
    gid: int

    @property
    def drops_privileges(self) -> bool:
        return os.geteuid() == 0 and self.uid != 0

    def popen_kwargs(self) -> dict[str, Any]:
        """Extra `subprocess.Popen` arguments that switch to this user (empty when already it)."""
        if not self.drops_privileges:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can_enter(self, path: Path) -> bool:
        """Whether this user can traverse into `path` (every parent must allow it)."""
        result = subprocess.run(
            ["test", "-d", str(path), "-a", "-x", str(path)],
            check=False,
            **self.popen_kwargs(),
        )
        return result.returncode == 0


def resolve(name: str | None = None) -> JobUser:
    """Pick the job user: the current user when not root, else `name`, `deltaci-job` or `nobody`."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    for candidate in (name,) if name else CANDIDATES:
        try:
            entry = pwd.getpwnam(candidate)
        except KeyError:
            continue
        if entry.pw_uid == 0 or entry.pw_gid == 0:
            raise JobUserError(f"job user {candidate!r} is root; refusing to run jobs as root")
        return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise JobUserError(f"no job user found (tried {', '.join((name,) if name else CANDIDATES)})")


def chown_tree(path: Path, user: JobUser) -> None:
    """Hand a directory tree to the job user without following symlinks."""
    if not user.drops_privileges:
        return
    os.lchown(path, user.uid, user.gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), user.uid, user.gid)
