"""Helpers every ecosystem shares: paths, the build-file sources, commands, workspaces."""

import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from planner.discovery.model import Project
from planner.git import Blob
from planner.globs import glob_match
from planner.manifests import ManifestError

_DRIVE = re.compile(r"^[A-Za-z]:")
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")  # its name


def parent_dir(path: str) -> str:
    """The directory holding ``path``; "." for top-level entries."""
    head = path.rpartition("/")[0]
    return head or "."


def basename(path: str) -> str:
    return path.rpartition("/")[2]


def join(base: str, rel: str) -> str | None:
    """``rel`` resolved against directory ``base``; None if it leaves the repository."""
    rel = rel.replace("\\", "/").strip()
    if not rel or rel.startswith("/") or _DRIVE.match(rel):
        return None
    joined = posixpath.normpath(rel if base == "." else f"{base}/{rel}")
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def in_dir(path: str, directory: str) -> bool:
    return directory == "." or path == directory or path.startswith(directory + "/")


def relative(path: str, start: str) -> str:
    return posixpath.relpath(path, start)


def ancestors(directory: str) -> Iterator[str]:
    """``directory`` and every directory above it, ending with "."."""
    while True:
        yield directory
        if directory == ".":
            return
        directory = parent_dir(directory)


def member_of(directory: str, root: str, include: list[str], exclude: list[str]) -> bool:
    """Whether ``directory`` is a workspace member by the root's glob lists."""
    if not in_dir(directory, root) or directory == root:
        return False
    rel = directory if root == "." else directory[len(root) + 1 :]
    hit = False
    for pattern in include:
        negate = pattern.startswith("!")
        pattern = pattern[1:] if negate else pattern
        if glob_match(pattern.rstrip("/"), rel):
            hit = not negate
    return hit and not any(glob_match(p.rstrip("/"), rel) for p in exclude)


def requirement_name(spec: str) -> str | None:
    """The distribution name at the start of a PEP 508 requirement string."""
    match = _REQUIREMENT.match(spec)
    return match.group(1) if match else None


def string_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


def phases(
    setup: list[str], build: list[str], test: list[str], lint: list[str]
) -> dict[str, list[str]]:
    """Steps per job kind: each job runs on a fresh runner, so each starts with setup."""
    return {"build": setup + build, "test": setup + test, "lint": setup + lint}


_NOTHING = "echo 'nothing to do: "


def nothing(what: str) -> str:
    """The step of a job kind the project has no script, target or task for: such a job
    is not planned (NO_SCRIPT) unless the policy requires it by name."""
    return f"{_NOTHING}{what}'"


def idle_kinds(steps: dict[str, list[str]]) -> dict[str, str]:
    """Job kind -> what is missing, for the kinds whose last step is ``nothing(...)``."""
    return {
        kind: commands[-1][len(_NOTHING) : -1]
        for kind, commands in steps.items()
        if commands and commands[-1].startswith(_NOTHING)
    }


@dataclass
class Sources:
    """The build files of one head commit: contents of those read, presence of the rest."""

    blobs: dict[str, Blob]  # the files discovery reads
    present: set[str]  # every build-file path, read or presence-only
    parsed: dict[str, object] = field(default_factory=dict)  # path -> result or error
    by_name: dict[str, list[str]] = field(default_factory=dict)
    _nearest: dict[tuple[str, tuple[str, ...]], str | None] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        for path in sorted(self.present):
            self.by_name.setdefault(basename(path), []).append(path)

    def named(self, *names: str) -> list[str]:
        return sorted(p for n in names for p in self.by_name.get(n, ()))

    def suffixed(self, *suffixes: str) -> list[str]:
        return sorted(p for n, ps in self.by_name.items() if n.endswith(suffixes) for p in ps)

    def has(self, path: str) -> bool:
        return path in self.present

    def parse(self, path: str) -> Any:
        """The build file parsed by its name's parser (see ``parse_blob``), once."""
        if path not in self.parsed:
            self.parsed[path] = parse_blob(path, self.blobs.get(path))
        result = self.parsed[path]
        if isinstance(result, Exception):
            raise result
        return result

    def nearest(self, directory: str, names: tuple[str, ...]) -> str | None:
        """The first of ``names`` found walking up from ``directory`` to the root (once
        per question: every member of a workspace asks about the same directory)."""
        key = (directory, names)
        if key not in self._nearest:
            self._nearest[key] = self._walk_up(directory, names)
        return self._nearest[key]

    def _walk_up(self, directory: str, names: tuple[str, ...]) -> str | None:
        for d in ancestors(directory):
            for n in names:
                candidate = n if d == "." else f"{d}/{n}"
                if candidate in self.present:
                    return candidate
        return None


PARSERS: dict[str, Callable[[bytes | None], Any]] = {}  # file name or ".suffix" -> parser


def parse_blob(path: str, blob: Blob | None) -> Any:
    """A build file's parsed content, or the exception that says why there is none.

    A pure function of the bytes, so it may run as soon as a blob arrives (in the
    reading thread) and its result be used later."""
    if blob is None or blob.problem:
        return ManifestError(blob.problem if blob else "not read")
    name = basename(path)
    parser = PARSERS.get(name) or PARSERS.get(name[name.rfind(".") :])
    if parser is None:
        return ManifestError("no parser for this file")
    try:
        return parser(blob.content)
    except Exception as exc:  # ManifestError, or a bug to re-raise where it is used
        return exc


def new_project(
    src: Sources,
    ecosystem: str,
    manifest: str,
    image: str,
    steps: dict[str, list[str]],
    mechanisms: dict[str, str] | None = None,
    member: bool = False,
    **edges: list[str],
) -> Project:
    """A project rooted at its manifest's directory."""
    return Project(
        member=member,
        mechanisms=dict(mechanisms or {}),
        no_script=idle_kinds(steps),
        root=parent_dir(manifest),
        ecosystem=ecosystem,
        manifest=manifest,
        image=image,
        steps=steps,
        provides=edges.get("provides", []),
        requires=edges.get("requires", []),
        path_deps=edges.get("path_deps", []),
    )
