"""Read a repository with git plumbing only, so a bare mirror works and no repository
code ever runs (no hooks, no filters, no working tree, no checkout).

Paths are decoded as UTF-8 (invalid bytes become backslash escapes) so every path is
valid text for JSON and databases. Contents come from one ``git cat-file --batch
--follow-symlinks`` process: a symlink inside the repository reads as its target, as
a checkout would; one leading outside the repository is reported, never followed.
"""

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterable
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


class Tree:
    """The paths of one commit, decoded and split in one pass each (C speed)."""

    def __init__(self, commit: str, raw: bytes) -> None:
        self.commit = commit
        try:
            text = raw.decode("utf-8")
            self.undecodable: frozenset[str] = frozenset()
        except UnicodeDecodeError:
            text = _decode(raw)
            self.undecodable = frozenset(_decode(p) for p in raw.split(b"\0") if not _utf8(p))
        self.paths = text.split("\0") if text else []
        if self.paths and not self.paths[-1]:
            self.paths.pop()

    def __contains__(self, path: str) -> bool:
        return path in self.paths

    def __len__(self) -> int:
        return len(self.paths)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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

    def list_tree(self, commit: str) -> Tree:
        """Every path at ``commit`` (recursive; symlinks and submodules included)."""
        _, out = self.run("ls-tree", "-r", "-z", "--name-only", "--full-tree", commit)
        return Tree(commit, out)

    def list_tree_async(self, commit: str) -> "Future[Tree]":
        """``list_tree`` in a thread: the biggest git read overlaps the small ones."""
        future: Future[Tree] = Future()

        def work() -> None:
            try:
                future.set_result(self.list_tree(commit))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        threading.Thread(target=work, daemon=True).start()
        return future

    def object_id(self, commit: str, path: str) -> str | None:
        """The object at ``path``, for the rare path a line-based request cannot name."""
        _, out = self.run("ls-tree", "-z", "--full-tree", commit, "--", path)
        meta = out.split(b"\0")[0].partition(b"\t")[0].split()
        return meta[2].decode() if len(meta) == 3 else None

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
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.stdout.close()
            self._proc.wait(timeout=30)

    def read(self, tree: Tree, paths: Iterable[str], limit: int) -> dict[str, Blob]:
        """Contents of ``paths`` at the tree's commit; over ``limit`` bytes they are
        hashed but not kept."""
        result: dict[str, Blob] = {}
        requests: list[tuple[str, str]] = []
        for path in paths:
            if path in tree.undecodable:
                result[path] = Blob(None, 0, "", "its name is not valid UTF-8")
            elif "\n" in path:  # a line-based request cannot carry it: ask by object id
                oid = self._git.object_id(tree.commit, path)
                if oid is None:
                    result[path] = Blob(None, 0, "", "not a file at head")
                else:
                    requests.append((path, oid))
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
