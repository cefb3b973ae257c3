"""Per-job directory layout.

<work-dir>/job-XXXX/          runner-owned, 0711: job code cannot rename what is inside
    job/                      the job's, 0700, the only host path a sandbox may write
        src/                  checkout of source.commit_sha; steps' workdir is inside
        home/                 $HOME (caches with `~/...` paths live here)
        tmp/                  $TMPDIR (mounted at /tmp in the bwrap sandbox)
    sandbox/                  runner-owned, read-only to the job: passwd, group,
                              forwarder script, egress proxy socket
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deltaci_runner.jobuser import JobUser, chown_tree


@dataclass(frozen=True)
class JobDirs:
    base: Path
    job: Path
    src: Path
    home: Path
    tmp: Path
    sandbox: Path


def create(work_dir: Path) -> JobDirs:
    """A fresh, empty layout; everything is runner-owned until `hand_over`."""
    base = Path(tempfile.mkdtemp(prefix="job-", dir=work_dir))
    os.chmod(base, 0o711)  # noqa: S103 - traversable, not listable, by the job user
    job = base / "job"
    dirs = JobDirs(base, job, job / "src", job / "home", job / "tmp", base / "sandbox")
    for path in (dirs.job, dirs.src, dirs.home, dirs.tmp):
        path.mkdir(mode=0o700)
    dirs.sandbox.mkdir(mode=0o755)
    return dirs


def hand_over(dirs: JobDirs, user: JobUser) -> None:
    """Give the job tree to the job user (after the runner fetched the source as itself)."""
    chown_tree(dirs.job, user)


def write_identity_files(dirs: JobDirs, user: JobUser) -> tuple[Path, Path]:
    """Minimal /etc/passwd and /etc/group for the sandbox, so the host's user list stays hidden."""
    passwd = dirs.sandbox / "passwd"
    group = dirs.sandbox / "group"
    passwd.write_text(
        "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
        f"{user.name}:x:{user.uid}:{user.gid}::{dirs.home}:/bin/bash\n"
    )
    group.write_text(f"root:x:0:\n{user.name}:x:{user.gid}:\n")
    for path in (passwd, group):
        os.chmod(path, 0o644)
    return passwd, group


def _make_writable(func, path, _exc) -> None:  # type: ignore[no-untyped-def]
    """rmtree hook for trees a job made read-only (only matters for a non-root runner)."""
    parent = os.path.dirname(path)
    try:
        os.chmod(parent, stat.S_IRWXU)
        os.chmod(path, stat.S_IRWXU)
    except OSError:
        return
    with contextlib.suppress(OSError):
        func(path)


def remove(dirs: JobDirs) -> None:
    """Delete the job tree (rmtree never follows the job's symlinks)."""
    shutil.rmtree(dirs.base, onerror=_make_writable)


def sweep(work_dir: Path) -> list[str]:
    """Delete job trees a previous instance left behind (a SIGKILLed runner never reaches
    `remove`); they may hold source and secrets. The work dir belongs to one runner."""
    removed = []
    for path in sorted(work_dir.glob("job-*")):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, onerror=_make_writable)
            removed.append(path.name)
    return removed
