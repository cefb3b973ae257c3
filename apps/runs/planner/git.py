"""Read a repository with git plumbing only, so a bare mirror works and no repository
code ever runs (no hooks, no filters, no working tree, no checkout):

- ``git ls-tree -r -z``, streamed and filtered while git writes it (never kept whole);
- ``git diff --name-status -M -z base head`` for the change;
- one ``git cat-file --batch --follow-symlinks`` process for every content read:
  regular files by object id, symlinks by path so that git follows one pointing inside
  the repository (as a checkout would) and reports, never follows, one leading outside.

Paths are decoded as UTF-8 (invalid bytes become backslash escapes) so every path is
valid text for JSON and databases.
"""

import contextlib
import hashlib
import os
import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass

NULL_SHA = "0" * 40
_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX")
_CHUNK = 1 << 20
_SYMLINK_PROBLEMS = {
    b"symlink": "a symlink to a path outside the repository",
    b"dangling": "a dangling symlink",
    b"loop": "a symlink loop",
    b"notdir": "a symlink through a file",
}


class GitError(Exception):
    """git failed in a way that is not an answer (not a repository, corrupt object)."""


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Blob:
    content: bytes | None  # None when larger than the caller's limit, or unreadable
    size: int
    sha256: str
    problem: str | None = None  # why there is no content at all (a symlink out, ...)


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    oid: str


class Tree:
    """The paths of one commit that the planner cares about (build files, ci.ai.yaml).

    The full listing of a big monorepo is scanned while git writes it and never kept:
    ``select`` picks, per batch of paths, the indexes worth keeping.
    """

    def __init__(self, commit: str, entries: dict[str, TreeEntry]) -> None:
        self.commit = commit
        self.entries = entries

    def __contains__(self, path: str) -> bool:
        return path in self.entries


def _scan(raw: bytes, select: Callable[[list[str]], list[int]], out: dict) -> None:
    """Add the selected ``mode type oid TAB path NUL`` records of ``raw`` to ``out``."""
    text = _decode(raw).rstrip("\0")
    if not text:
        return
    count = text.count("\0") + 1
    if text.count("\t") == count:  # no tab inside a path: split meta and path in C
        parts = text.replace("\t", "\0").split("\0")
        metas, paths = parts[0::2], parts[1::2]
    else:
        records = text.split("\0")
        metas = [r[: r.index("\t")] for r in records]
        paths = [r[r.index("\t") + 1 :] for r in records]
    for index in select(paths):
        mode, _, rest = metas[index].partition(" ")
        out[paths[index]] = TreeEntry(mode, rest.rpartition(" ")[2])


class Git:
    """A handle on one repository directory (bare or not)."""

    def __init__(self, repo_path: str) -> None:
        self.repo_path = os.fspath(repo_path)
        self.env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
        self.env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")

    def argv(self, args: Iterable[str]) -> list[str]:
        return [
            "git", "-C", self.repo_path, "--literal-pathspecs", "-c", "core.fsmonitor=false",
            *args,
        ]  # fmt: skip

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> tuple[int, bytes]:
        try:
            proc = subprocess.run(
                self.argv(args), capture_output=True, env=self.env, check=False, timeout=600
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
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}",
            ok_codes=(0, 1, 128),
        )  # fmt: skip
        return out.decode().strip() if code == 0 else None

    def first_parent(self, commit: str) -> str | None:
        return self.resolve_commit(f"{commit}^1")

    def is_ancestor(self, ancestor: str, commit: str) -> bool:
        code, _ = self.run("merge-base", "--is-ancestor", ancestor, commit, ok_codes=(0, 1))
        return code == 0

    def list_tree(self, commit: str, select: Callable[[list[str]], list[int]]) -> Tree:
        """The entries of ``commit`` that ``select`` keeps, read as git writes them."""
        proc = subprocess.Popen(
            self.argv(["ls-tree", "-r", "-z", "--full-tree", commit]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        entries: dict[str, TreeEntry] = {}
        pending = b""
        while chunk := proc.stdout.read1(_CHUNK):
            pending += chunk
            if len(pending) >= _CHUNK // 2:
                cut = pending.rfind(b"\0") + 1
                _scan(pending[:cut], select, entries)
                pending = pending[cut:]
        _scan(pending, select, entries)
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise GitError(f"git ls-tree failed: {_decode(err).strip()[:500]}")
        return Tree(commit, entries)

    def list_tree_async(
        self, commit: str, select: Callable[[list[str]], list[int]]
    ) -> "Future[Tree]":
        """``list_tree`` in a thread: the biggest git read overlaps the small ones."""
        future: Future[Tree] = Future()

        def work() -> None:
            try:
                future.set_result(self.list_tree(commit, select))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        threading.Thread(target=work, daemon=True).start()
        return future

    def changed_paths(self, base: str, head: str) -> list[tuple[str, list[str]]]:
        """(status, paths) for each change; renames and copies carry old and new path."""
        _, out = self.run(
            "diff", "--no-ext-diff", "--no-color", "--no-relative", "--name-status", "-M",
            "-z", base, head, "--",
        )  # fmt: skip
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
        self._git = git
        self._proc = subprocess.Popen(
            git.argv(["cat-file", "--batch", "--follow-symlinks"]),
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
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):  # cat-file already gone: nothing to flush
                stream.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def read(self, tree: Tree, paths: Iterable[str], limit: int) -> dict[str, Blob]:
        """Contents of ``paths`` at the tree's commit; over ``limit`` bytes they are
        hashed but not kept. Regular files are read by object id; symlinks by path, so
        git follows them inside the repository; other paths (not listed) by path too."""
        result: dict[str, Blob] = {}
        requests: list[tuple[str, str]] = []
        for path in paths:
            entry = tree.entries.get(path)
            if entry is not None and entry.mode == "160000":
                result[path] = Blob(None, 0, "", "a submodule, not a file")
            elif entry is not None and (entry.mode != "120000" or "\n" in path or "\\" in path):
                requests.append((path, entry.oid))
            elif "\n" in path:
                result[path] = Blob(None, 0, "", "not a file at head")
            else:
                requests.append((path, f"{tree.commit}:{path}"))
        if not requests:
            return result
        payload = "".join(f"{r}\n" for _, r in requests).encode()
        writer = threading.Thread(target=self._write, args=(payload,), daemon=True)
        writer.start()
        try:
            for path, _ in requests:
                result[path] = self._read_one(limit)
        finally:
            writer.join()
        return result

    def _write(self, payload: bytes) -> None:
        try:
            self._proc.stdin.write(payload)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader reports the failure

    def _read_one(self, limit: int) -> Blob:
        line = self._proc.stdout.readline()
        if not line:
            raise GitError("cat-file stopped answering")
        if line.endswith((b" missing\n", b" ambiguous\n")):
            return Blob(None, 0, "", "not a file at head")
        head = line.split()
        if len(head) == 2 and head[0] in _SYMLINK_PROBLEMS:
            self._skip(int(head[1]) + 1)
            return Blob(None, 0, "", _SYMLINK_PROBLEMS[head[0]])
        if len(head) != 3:
            raise GitError(f"cat-file: unexpected answer {_decode(line.strip())!r}")
        size = int(head[2])
        if head[1] != b"blob":
            self._skip(size + 1)
            return Blob(None, 0, "", f"not a file ({_decode(head[1])})")
        digest = hashlib.sha256()
        content = None
        if size <= limit:
            content = self._proc.stdout.read(size)
            if len(content) != size:
                raise GitError("cat-file: short read")
            digest.update(content)
        else:
            self._skip(size, digest)
        self._proc.stdout.read(1)  # the newline after each object
        return Blob(content, size, digest.hexdigest())

    def _skip(self, size: int, digest: "hashlib._Hash | None" = None) -> None:
        while size:
            chunk = self._proc.stdout.read(min(size, _CHUNK))
            if not chunk:
                raise GitError("cat-file: short read")
            if digest is not None:
                digest.update(chunk)
            size -= len(chunk)
