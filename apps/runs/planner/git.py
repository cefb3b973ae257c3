"""Read a repository with git plumbing only, so a bare mirror works and no repository
code ever runs (no hooks, no filters, no working tree).

Paths are decoded as UTF-8 with backslash escapes for invalid bytes, so every path is
valid text for JSON and databases; objects are always addressed by id, never by path.
"""

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass

NULL_SHA = "0" * 40
_BLOB_MODES = frozenset({"100644", "100755"})
_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX")
_CHUNK = 1 << 20


class GitError(Exception):
    """git failed in a way that is not an answer (not a repository, corrupt object)."""


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    oid: str

    @property
    def is_file(self) -> bool:
        """A regular file whose content may be read (not a symlink or submodule)."""
        return self.mode in _BLOB_MODES


@dataclass(frozen=True)
class Blob:
    content: bytes | None  # None when larger than the limit the caller gave
    size: int
    sha256: str


class Git:
    """A handle on one repository directory (bare or not)."""

    def __init__(self, repo_path: str) -> None:
        self.repo_path = os.fspath(repo_path)
        self.env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
        self.env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")

    def _argv(self, args: Iterable[str]) -> list[str]:
        return ["git", "-C", self.repo_path, "-c", "core.fsmonitor=false", *args]

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> tuple[int, bytes]:
        try:
            proc = subprocess.run(
                self._argv(args), capture_output=True, env=self.env, check=False, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {args[0]} failed: {exc}") from exc
        if proc.returncode not in ok_codes:
            err = _decode(proc.stderr).strip()[:500]
            raise GitError(f"git {args[0]} failed ({proc.returncode}): {err}")
        return proc.returncode, proc.stdout

    def is_repository(self) -> bool:
        code, _ = self.run("rev-parse", "--git-dir", ok_codes=(0, 128))
        return code == 0

    def resolve_commit(self, rev: str) -> str | None:
        """The full sha of ``rev`` if it names a commit here, else None."""
        if not rev or rev.startswith("-") or rev == NULL_SHA:
            return None
        code, out = self.run(
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{rev}^{{commit}}",
            ok_codes=(0, 1, 128),
        )
        return out.decode().strip() if code == 0 else None

    def first_parent(self, commit: str) -> str | None:
        return self.resolve_commit(f"{commit}^1")

    def is_ancestor(self, ancestor: str, commit: str) -> bool:
        code, _ = self.run("merge-base", "--is-ancestor", ancestor, commit, ok_codes=(0, 1))
        return code == 0

    def list_tree(self, commit: str) -> dict[str, TreeEntry]:
        """Every path at ``commit`` (recursive, submodules and symlinks included)."""
        _, out = self.run("ls-tree", "-r", "-z", "--full-tree", commit)
        tree: dict[str, TreeEntry] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, _, rest = meta.partition(b" ")
            oid = rest.rpartition(b" ")[2]
            tree[_decode(path)] = TreeEntry(mode.decode(), oid.decode())
        return tree

    def changed_paths(self, base: str, head: str) -> list[tuple[str, list[str]]]:
        """(status, paths) for each change; renames and copies carry old and new path."""
        _, out = self.run(
            "diff-tree", "-r", "-z", "--no-commit-id", "--name-status", "-M", base, head
        )
        fields = out.split(b"\0")
        changes: list[tuple[str, list[str]]] = []
        i = 0
        while i < len(fields) and fields[i]:
            status = fields[i].decode()
            count = 2 if status[:1] in ("R", "C") else 1
            paths = [_decode(p) for p in fields[i + 1 : i + 1 + count]]
            changes.append((status[:1], paths))
            i += 1 + count
        return changes

    def blobs(self) -> "BlobReader":
        return BlobReader(self)


class BlobReader:
    """One long-lived ``git cat-file --batch`` process for all reads of one plan."""

    def __init__(self, git: Git) -> None:
        self._proc = subprocess.Popen(
            git._argv(["cat-file", "--batch"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git.env,
        )

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.stdout.close()
            self._proc.wait(timeout=30)

    def read(self, oids: Iterable[str], limit: int) -> dict[str, Blob]:
        """Contents by object id; blobs over ``limit`` bytes are hashed but not kept."""
        wanted = sorted(set(oids))
        if not wanted:
            return {}
        request = "".join(f"{oid}\n" for oid in wanted).encode()
        writer = threading.Thread(target=self._write, args=(request,), daemon=True)
        writer.start()
        try:
            result = {oid: self._read_one(oid, limit) for oid in wanted}
        finally:
            writer.join()
        return result

    def _write(self, request: bytes) -> None:
        try:
            self._proc.stdin.write(request)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader reports the failure

    def _read_one(self, oid: str, limit: int) -> Blob:
        stdout = self._proc.stdout
        header = stdout.readline().split()
        if len(header) != 3 or header[0].decode() != oid:
            raise GitError(f"cat-file: cannot read object {oid}")
        size = int(header[2])
        digest = hashlib.sha256()
        if size <= limit:
            content = stdout.read(size)
            if len(content) != size:
                raise GitError(f"cat-file: short read of {oid}")
            digest.update(content)
        else:
            content, left = None, size
            while left:
                chunk = stdout.read(min(left, _CHUNK))
                if not chunk:
                    raise GitError(f"cat-file: short read of {oid}")
                digest.update(chunk)
                left -= len(chunk)
        stdout.read(1)  # the newline after each object
        return Blob(content, size, digest.hexdigest())
