"""Read a repository with git plumbing only, so a bare mirror works and no repository
code ever runs (no hooks, no filters, no working tree, no checkout):

- ``git ls-tree -r -z``, streamed in batches while git writes it (a big monorepo's
  listing is filtered, never kept whole);
- ``git diff --name-status -M -z base head`` for the change;
- one ``git cat-file --batch --follow-symlinks`` process for every content read, fed
  while the listing still streams: files by object id; symlinks by path, so git
  follows one pointing inside the repository (as a checkout would) and reports, never
  follows, one leading outside. It also resolves the head and the base to commits.

Paths are decoded as UTF-8 (invalid bytes become backslash escapes) so every path is
valid text for JSON and databases; the listing is filtered as bytes, and only the
records of possible build files are decoded.
"""

import contextlib
import fcntl
import hashlib
import io
import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from queue import SimpleQueue
from typing import IO, TypeVar

from planner.gitcmd import NULL_SHA, GitError, decode, git_env, run_git

__all__ = [
    "ABSENT",
    "NULL_SHA",
    "Blob",
    "BlobReader",
    "Entry",
    "Git",
    "GitError",
    "background",
    "entry",
]
T = TypeVar("T")
ABSENT = "not a file at head"  # a Blob's problem when the path does not exist
_CHUNK = 1 << 20
_SYMLINK_PROBLEMS = {
    b"symlink": "a symlink to a path outside the repository",
    b"dangling": "a dangling symlink",
    b"loop": "a symlink loop",
    b"notdir": "a symlink through a file",
}


@dataclass(frozen=True)
class Blob:
    content: bytes | None  # None when larger than the caller's limit, or unreadable
    size: int
    sha256: str
    problem: str | None = None  # why there is no content at all (a symlink out, ...)


@dataclass(frozen=True)
class NotAFile(Blob):
    """What git found instead of a file: its type ("commit", "tree", ...) and id."""

    kind: str = ""
    oid: str = ""


def _may_name_commit(rev: str) -> bool:
    """Worth asking git about: not empty, not an option, not the all-zero "no commit"."""
    return bool(rev) and not rev.startswith("-") and rev != NULL_SHA


def background(fn: Callable[..., T], *args: object) -> "Future[T]":
    """Run ``fn`` in a thread: the slowest git read overlaps the small ones."""
    future: Future[T] = Future()

    def work() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=work, daemon=True).start()
    return future


@dataclass(frozen=True)
class Entry:
    """One line of ``git ls-tree``: what and where an object is."""

    path: str
    mode: str
    oid: str


def entry(record: bytes) -> Entry:
    """An ``Entry`` from one ``mode type oid TAB path`` record of ``git ls-tree -z``
    (the path decoded like every path, see ``decode``)."""
    meta, _, path = record.partition(b"\t")
    mode, _, rest = meta.partition(b" ")
    return Entry(decode(path), mode.decode(), rest.rpartition(b" ")[2].decode())


class Git:
    """A handle on one repository directory (bare or not)."""

    def __init__(self, repo_path: str) -> None:
        self.repo_path = str(repo_path)
        self.env = git_env()

    def argv(self, args: Iterable[str]) -> list[str]:
        return [
            "git", "-C", self.repo_path, "--literal-pathspecs", "-c", "core.fsmonitor=false",
            *args,
        ]  # fmt: skip

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> tuple[int, bytes]:
        return run_git(self.argv(args)[1:], env=self.env, ok_codes=ok_codes)

    def is_repository(self) -> bool:
        code, _ = self.run("rev-parse", "--git-dir", ok_codes=(0, 128))
        return code == 0

    def resolve_commit(self, rev: str) -> str | None:
        """The full sha of ``rev`` if it names a commit here, else None."""
        if not _may_name_commit(rev):
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

    def scan_tree(self, commit: str, on_batch: Callable[[bytes], None]) -> None:
        """Hand the listing of ``commit`` to ``on_batch`` while git is still listing, as
        batches of whole ``mode type oid TAB path NUL`` records (raw ``ls-tree -z``
        output, never decoded as a whole: see ``entry``); symlinks and submodules
        included."""
        proc = subprocess.Popen(
            self.argv(["ls-tree", "-r", "-z", "--full-tree", commit]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        stdout, stderr = _pipes(proc)
        _widen(stdout)
        rest = b""
        # Whole blocks: read1 of a large size allocates (and faults in) that much for
        # every few KiB git writes, a third of this thread's time.
        while block := stdout.read(_CHUNK // 2):
            pending = rest + block
            cut = pending.rfind(b"\0") + 1
            if cut:
                on_batch(pending[:cut])
            rest = pending[cut:]
        if rest:
            on_batch(rest if rest.endswith(b"\0") else rest + b"\0")
        err = stderr.read()
        if proc.wait() != 0:
            raise GitError(f"git ls-tree failed: {decode(err).strip()[:500]}")

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
            paths = [decode(p) for p in fields[i + 1 : i + 1 + count]]
            changes.append((status[:1], paths))
            i += 1 + count
        return changes

    def blobs(self) -> "BlobReader":
        return BlobReader(self)


Then = Callable[[Entry | str, Blob], None]


def _pipes(proc: "subprocess.Popen[bytes]") -> tuple[io.BufferedReader, io.BufferedReader]:
    """(stdout, stderr) of ``proc`` as buffered readers (stderr may be absent)."""
    stdout, stderr = proc.stdout, proc.stderr
    assert isinstance(stdout, io.BufferedReader)
    return stdout, stderr if isinstance(stderr, io.BufferedReader) else stdout


def _widen(pipe: IO[bytes]) -> None:
    """Give ``pipe`` a 1 MiB buffer where the system allows it (Linux): git then lists
    ahead while the reading thread waits for the GIL, instead of stopping every 64 KiB
    (on a 100,000-file tree that made the listing take up to twice as long, and cost
    git a third more CPU in wake-ups)."""
    resize = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if resize is not None:
        with contextlib.suppress(OSError):  # over the system's limit: the pipe stays
            fcntl.fcntl(pipe.fileno(), resize, _CHUNK)


def _thread_with_room(target: Callable[[], None]) -> threading.Thread:
    """Start ``target`` in a thread with an 8 MiB stack: manifests are parsed there, and
    a deeply nested one must end in RecursionError, not overflow a small default stack
    (musl gives threads 128 KiB)."""
    previous = threading.stack_size(8 << 20)
    try:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
    finally:
        threading.stack_size(previous)
    return thread


def _request_line(commit: str, item: Entry | str) -> str | Blob:
    """What to ask cat-file for, or the answer when there is nothing to ask."""
    path = item if isinstance(item, str) else item.path
    if isinstance(item, Entry) and item.mode == "160000":
        return Blob(None, 0, "", "a submodule, not a file")
    by_path = isinstance(item, str) or item.mode == "120000"  # git follows symlinks
    if by_path and "\n" not in path and "\\" not in path:
        return f"{commit}:{path}"
    if isinstance(item, Entry):
        return item.oid  # a name a line cannot carry (or not valid UTF-8): by object id
    return Blob(None, 0, "", ABSENT)


class BlobReader:
    """One long-lived ``git cat-file --batch`` process for all reads of one plan.

    ``request`` queues reads and returns at once (a thread drains the answers in
    order), so reading overlaps listing; ``collect`` waits for the answers.
    """

    def __init__(self, git: Git) -> None:
        try:
            self._proc = subprocess.Popen(
                git.argv(["cat-file", "--batch", "--follow-symlinks"]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=git.env,
            )
        except OSError as exc:
            raise GitError(f"git cat-file failed: {exc}") from exc
        self._lock = threading.Lock()
        self._answered = threading.Condition()
        stdin = self._proc.stdin
        assert stdin is not None
        self._stdin: IO[bytes] = stdin
        self._stdout = _pipes(self._proc)[0]
        self._queue: SimpleQueue[list[tuple[int, int, Entry | str, Then | None]] | None]
        self._queue = SimpleQueue()
        self._results: dict[int, Blob] = {}
        self._failure: GitError | None = None
        self._next = 0
        self._drainer = _thread_with_room(self._drain)

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._queue.put(None)
        with contextlib.suppress(OSError):  # cat-file already gone: nothing to flush
            self._stdin.close()
        self._drainer.join(timeout=30)
        with contextlib.suppress(OSError):
            self._stdout.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def request(
        self,
        commit: str,
        wanted: Iterable[Entry | str],
        limit: int,
        then: Then | None = None,
    ) -> list[int]:
        """Queue reads at ``commit`` of tree entries (regular files by object id) or of
        paths; contents over ``limit`` bytes are hashed but not kept. One ticket each.
        ``then(item, blob)`` runs in the reading thread as each answer arrives."""
        with self._lock:
            tickets, lines, batch = [], [], []
            for item in wanted:
                ticket, self._next = self._next, self._next + 1
                tickets.append(ticket)
                line = _request_line(commit, item)
                if isinstance(line, Blob):
                    if then is not None:
                        then(item, line)
                    self._answer([(ticket, line)])
                    continue
                batch.append((ticket, limit, item, then))
                lines.append(f"{line}\n")
            self._send(batch, "".join(lines).encode())
        return tickets

    def commit(self, rev: str) -> str | None:
        """The full sha of ``rev`` if it names a commit here, like ``Git.resolve_commit``
        but asked of this cat-file: no git process of its own."""
        if not _may_name_commit(rev) or "\n" in rev:  # one request per line
            return None
        try:
            line = f"{rev}^{{commit}}\n".encode()
        except UnicodeEncodeError:  # not a name git could have been given either
            return None
        with self._lock:
            ticket, self._next = self._next, self._next + 1
            self._send([(ticket, 0, rev, None)], line)
        [answer] = self.collect([ticket])
        return answer.oid if isinstance(answer, NotAFile) and answer.kind == "commit" else None

    def _send(self, batch: list[tuple[int, int, Entry | str, Then | None]], lines: bytes) -> None:
        """Hand ``batch`` to the reading thread and its request ``lines`` to cat-file (the
        caller holds the lock, so both keep the same order)."""
        if not lines:
            return
        self._queue.put(batch)  # one hand-over per call, not one per file
        try:
            self._stdin.write(lines)
            self._stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise GitError("cat-file stopped reading") from exc

    def collect(self, tickets: list[int]) -> list[Blob]:
        done = 0  # tickets[:done] are answered: each wake-up checks only the rest
        with self._answered:
            while True:
                while done < len(tickets) and tickets[done] in self._results:
                    done += 1
                if done == len(tickets):
                    return [self._results.pop(t) for t in tickets]
                if self._failure is not None:
                    raise self._failure
                self._answered.wait(timeout=60)

    def read(self, commit: str, wanted: list[Entry | str], limit: int) -> list[Blob]:
        return self.collect(self.request(commit, wanted, limit))

    def _answer(self, answers: list[tuple[int, Blob]]) -> None:
        with self._answered:
            self._results.update(answers)
            self._answered.notify_all()

    def _drain(self) -> None:
        """Answer each queued batch, waking the waiting threads once per batch (waking
        them per file made the threads trade the GIL thousands of times per plan)."""
        while (batch := self._queue.get()) is not None:
            answers: list[tuple[int, Blob]] = []
            for ticket, limit, wanted, then in batch:
                try:
                    blob = self._read_one(limit)
                except (GitError, OSError, ValueError) as exc:
                    with self._answered:
                        self._results.update(answers)
                        self._failure = exc if isinstance(exc, GitError) else GitError(str(exc))
                        self._answered.notify_all()
                    return
                if then is not None:
                    then(wanted, blob)  # must not raise: it records its own failures
                answers.append((ticket, blob))
            self._answer(answers)

    def _read_one(self, limit: int) -> Blob:
        line = self._stdout.readline()
        if not line:
            raise GitError("cat-file stopped answering")
        if line.endswith((b" missing\n", b" ambiguous\n")):
            return Blob(None, 0, "", ABSENT)
        head = line.split()
        if len(head) == 2 and head[0] in _SYMLINK_PROBLEMS:
            self._skip(int(head[1]) + 1)
            return Blob(None, 0, "", _SYMLINK_PROBLEMS[head[0]])
        if len(head) != 3:
            raise GitError(f"cat-file: unexpected answer {decode(line.strip())!r}")
        size = int(head[2])
        if head[1] != b"blob":
            self._skip(size + 1)
            kind = decode(head[1])
            return NotAFile(None, 0, "", f"not a file ({kind})", kind, head[0].decode())
        digest = hashlib.sha256()
        content = None
        if size <= limit:
            content = self._stdout.read(size)
            if len(content) != size:
                raise GitError("cat-file: short read")
            digest.update(content)
        else:
            self._skip(size, digest)
        self._stdout.read(1)  # the newline after each object
        return Blob(content, size, digest.hexdigest())

    def _skip(self, size: int, digest: "hashlib._Hash | None" = None) -> None:
        while size:
            chunk = self._stdout.read(min(size, _CHUNK))
            if not chunk:
                raise GitError("cat-file: short read")
            if digest is not None:
                digest.update(chunk)
            size -= len(chunk)
