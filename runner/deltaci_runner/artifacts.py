"""Collect artifacts by glob and upload them through the control plane's signed URLs.

The workspace belongs to the job, so a matched path may be a symlink to a
host file (`reports/x.xml -> /etc/shadow`). Files are therefore opened
component by component with O_NOFOLLOW beneath the job tree and copied to a
runner-private temp file (hashed while copying) before anything is sent.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from deltaci_runner.client import (
    ClientError,
    ControlPlane,
    ProtocolError,
    StaleLease,
    retry_transient,
)
from deltaci_runner.jlog import ContextLogger

MAX_FILES = 1000
MAX_SCANNED = 200_000
ARTIFACT_TYPES = {"log", "junit", "coverage", "file"}
CONTENT_TYPES = {"junit": "application/xml"}


@dataclass(frozen=True)
class Found:
    name: str  # path relative to the workdir
    relpath: str  # path relative to the job tree, for opening beneath it
    type: str


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Glob -> regex over '/'-separated relative paths: `*` and `?` stay in one directory,
    `**/` spans any number of directories."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            members = pattern[i + 1 : end]
            negate = members.startswith("!")
            members = re.escape(members[1:] if negate else members).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{members}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _files(workdir: Path) -> list[str]:
    """Regular files under workdir, relative, without following symlinks (a job can plant
    symlink loops or links to / — walking them as root would hang or wander)."""
    found: list[str] = []
    for root, dirs, files in os.walk(workdir):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = os.path.join(root, name)
            if not os.path.islink(path):
                found.append(os.path.relpath(path, workdir))
            if len(found) >= MAX_SCANNED:
                return found
    return found


def collect(specs: list[dict[str, Any]], workdir: Path, job_root: Path) -> list[Found]:
    """Files matching the job's artifact globs (relative to workdir), de-duplicated."""
    found: dict[str, Found] = {}
    files = _files(workdir)
    for spec in specs:
        pattern = str(spec.get("path") or "").removeprefix("./")
        kind = str(spec.get("type") or "file")
        if not pattern or os.path.isabs(pattern) or ".." in Path(pattern).parts:
            continue
        regex = pattern_regex(pattern)
        for name in files:
            if name in found or not regex.match(name):
                continue
            relpath = os.path.relpath(workdir / name, job_root)
            if relpath.startswith(".."):
                continue
            found[name] = Found(name, relpath, kind if kind in ARTIFACT_TYPES else "file")
            if len(found) >= MAX_FILES:
                return list(found.values())
    return list(found.values())


def open_beneath(root: Path, relpath: str) -> int:
    """Open a regular file under `root` without following any symlink on the way."""
    parts = Path(relpath).parts
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise OSError(f"{relpath} is not a regular file")
    return file_fd


@contextmanager
def private_copy(root: Path, relpath: str) -> Iterator[tuple[IO[bytes], str, int]]:
    """(temp file, sha256, size) of a safe snapshot of the artifact."""
    digest = hashlib.sha256()
    size = 0
    src_fd = open_beneath(root, relpath)
    with tempfile.TemporaryFile() as tmp, os.fdopen(src_fd, "rb") as src:
        while chunk := src.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
            tmp.write(chunk)
        tmp.flush()
        tmp.seek(0)
        yield tmp, digest.hexdigest(), size


def upload(
    plane: ControlPlane,
    lease_id: str,
    job_root: Path,
    found: list[Found],
    log: ContextLogger,
) -> list[dict[str, str]]:
    """Upload each file; returns Complete's `artifacts` list. StaleLease propagates."""
    uploaded = []
    for item in found:
        try:
            uri = _upload_one(plane, lease_id, job_root, item)
        except StaleLease:
            raise
        except (ClientError, OSError) as exc:
            log.warning("artifact not uploaded", artifact=item.name, error=str(exc))
            continue
        uploaded.append({"type": item.type, "uri": uri})
    return uploaded


def _upload_one(plane: ControlPlane, lease_id: str, job_root: Path, item: Found) -> str:
    with private_copy(job_root, item.relpath) as (tmp, sha256, size):
        content_type = CONTENT_TYPES.get(item.type) or (
            mimetypes.guess_type(item.name)[0] or "application/octet-stream"
        )
        request = {
            "type": "ArtifactUploadRequest",
            "lease_id": lease_id,
            "name": item.name,
            "artifact_type": item.type,
            "size": size,
            "sha256": sha256,
            "content_type": content_type,
        }
        deadline = time.monotonic() + 60
        answer = retry_transient(
            lambda: plane.post_json("/api/v1/internal/artifacts", request), deadline=deadline
        )
        upload_spec = answer.get("upload") or {}
        if not upload_spec.get("url") or not answer.get("uri"):
            raise ProtocolError(201, "INVALID_ANSWER", "upload instructions without url/uri")

        def put() -> None:
            tmp.seek(0)
            plane.put_upload(upload_spec, tmp)

        retry_transient(put, deadline=time.monotonic() + 120)
        return str(answer["uri"])
