"""Job caches in a local directory, by key.

Layout: `<cache-dir>/<sha256(key)>/meta.json` plus one tar per declared path.
An entry is written to a temp dir and renamed into place, so readers see all
of it or nothing, and a key once saved is never overwritten (keys name their
content, e.g. `pip:<lock hash>`). `read_only` caches (fork pull requests) are
restored, never saved.

The store is bounded (`--cache-max-size`): after each save the least recently used
entries (a hit refreshes an entry's `meta.json` time) are removed until the total fits,
never the entry just saved. An entry is renamed away before it is deleted, so it is
never seen half gone; a save that crashed leaves a `.tmp-*` folder, swept after a day.

`tar` runs as the job user, so a job's symlinks can only ever reach what the
job user could reach anyway; paths must also resolve inside the job tree.
The cache directory itself stays private to the runner: jobs cannot poison
entries of other keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaci_runner.jobuser import JobUser
from deltaci_runner.workspace import JobDirs


@dataclass
class CacheResult:
    type: str
    key: str
    hit: bool
    read_only: bool
    paths: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "key": self.key, "hit": self.hit, "read_only": self.read_only}


def resolve_path(path: str, dirs: JobDirs) -> Path | None:
    """`~/x` -> $HOME/x, relative -> workspace/x; None if it would leave the job tree."""
    if path == "~" or path.startswith("~/"):
        candidate = dirs.home / path[2:]
    elif os.path.isabs(path):
        candidate = Path(path)
    else:
        candidate = dirs.src / path
    real = Path(os.path.realpath(candidate))
    job = Path(os.path.realpath(dirs.job))
    if real == job or job not in real.parents:
        return None
    return real


DEFAULT_MAX_BYTES = 10 * 1024**3
STALE_TMP_SECONDS = 24 * 3600


class CacheStore:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def _entry(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()

    @staticmethod
    def _archive_name(path: str) -> str:
        return hashlib.sha256(path.encode()).hexdigest()[:16] + ".tar"

    def restore(
        self, spec: dict[str, Any], dirs: JobDirs, user: JobUser, timeout: float
    ) -> CacheResult:
        key = str(spec.get("key") or "")
        paths = tuple(str(p) for p in spec.get("paths") or ())
        result = CacheResult(
            type=str(spec.get("type") or "deps"),
            key=key,
            hit=False,
            read_only=bool(spec.get("read_only")),
            paths=paths,
        )
        entry = self._entry(key)
        if not key or not (entry / "meta.json").is_file():
            return result
        for path in paths:
            archive = entry / self._archive_name(path)
            target = resolve_path(path, dirs)
            if target is None or not archive.is_file():
                continue
            with archive.open("rb") as stdin:
                _run_as(
                    user,
                    ["sh", "-c", 'mkdir -p -- "$1" && exec tar -x -f - -C "$1"', "sh", str(target)],
                    stdin=stdin,
                    timeout=timeout,
                )
        result.hit = True
        with _quiet():
            os.utime(entry / "meta.json")  # recently used: evicted last
        return result

    def save(self, result: CacheResult, dirs: JobDirs, user: JobUser, timeout: float) -> bool:
        """Store the cache's paths under its key; False when not saved (read-only, hit, empty)."""
        if result.read_only or result.hit or not result.key:
            return False
        entry = self._entry(result.key)
        if entry.exists():
            return False
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            saved = 0
            for path in result.paths:
                target = resolve_path(path, dirs)
                if target is None or not target.is_dir():
                    continue
                with (tmp / self._archive_name(path)).open("wb") as out:
                    rc = _run_as(
                        user,
                        ["tar", "-c", "-f", "-", "-C", str(target), "."],
                        stdout=out,
                        timeout=timeout,
                    )
                if rc in (0, 1):  # GNU tar: 1 = some file changed while being read
                    saved += 1
                else:
                    (tmp / self._archive_name(path)).unlink()
            if not saved:
                return False
            (tmp / "meta.json").write_text(json.dumps({"key": result.key, "paths": result.paths}))
            try:
                os.rename(tmp, entry)
            except OSError:
                return False  # a concurrent runner saved the same key first
            self.evict(keep=entry)
            return True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def evict(self, keep: Path | None = None) -> list[str]:
        """Remove least recently used entries until the store fits in `max_bytes`; the
        keys removed. Leftovers of crashed saves go too, once a day old."""
        entries, total = [], 0
        now = time.time()
        for child in self.root.iterdir() if self.root.is_dir() else ():
            if child.name.startswith(".tmp-"):
                with _quiet():
                    if now - child.stat().st_mtime > STALE_TMP_SECONDS:
                        shutil.rmtree(child, ignore_errors=True)
                continue
            with _quiet():
                used = (child / "meta.json").stat().st_mtime
                size = sum(f.stat().st_size for f in child.iterdir() if f.is_file())
                entries.append((used, child, size))
                total += size
        removed = []
        for _used, child, size in sorted(entries, key=lambda e: (e[0], e[1].name)):
            if total <= self.max_bytes:
                break
            if child == keep:
                continue
            key = _key_of(child)
            doomed = child.with_name(f".tmp-evict-{child.name}")
            with _quiet():  # gone already if another runner evicted it first
                os.rename(child, doomed)
                removed.append(key)
            shutil.rmtree(doomed, ignore_errors=True)
            total -= size
        return removed


def _key_of(entry: Path) -> str:
    try:
        return str(json.loads((entry / "meta.json").read_text()).get("key", entry.name))
    except (OSError, ValueError, AttributeError):
        return entry.name


def _quiet() -> contextlib.AbstractContextManager[None]:
    """Another runner sharing the directory may remove an entry under our feet."""
    return contextlib.suppress(FileNotFoundError, NotADirectoryError)


def _run_as(user: JobUser, argv: list[str], timeout: float, **kw: Any) -> int:
    try:
        return subprocess.run(
            argv,
            check=False,
            timeout=max(timeout, 1.0),
            stderr=subprocess.DEVNULL,
            cwd="/",
            **kw,
            **user.popen_kwargs(),
        ).returncode
    except subprocess.TimeoutExpired:
        return 124
