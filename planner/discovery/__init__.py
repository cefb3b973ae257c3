"""Discovery: which files are build files, what projects they declare, and how those
projects depend on each other. Each ecosystem module reads only its own manifests; this
module selects the files, runs the ecosystems and links their results."""

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from planner.discovery import dotnet, go, gradle, make, maven, node, python, rust
from planner.discovery.common import PARSERS, Sources, ancestors, basename, parent_dir
from planner.discovery.model import Discovery, EcosystemResult, Project

ECOSYSTEMS = (go, node, python, rust, maven, gradle, dotnet, make)
IGNORED_DIRS = frozenset({"node_modules", ".git"})

_READ = frozenset(n for e in ECOSYSTEMS for n in e.READ_NAMES)
_PRESENT = frozenset(n for e in ECOSYSTEMS for n in e.PRESENT_NAMES)
_SUFFIXES = tuple(s for e in ECOSYSTEMS for s in getattr(e, "READ_SUFFIXES", ()))
_ROOT_ONLY = frozenset(make.ROOT_NAMES)
_NAMES = _READ | _PRESENT | _ROOT_ONLY
PARSERS.update(parser for e in ECOSYSTEMS for parser in e.PARSERS.items())


def candidate_records(batch: bytes, also: frozenset[str] = frozenset()) -> list[bytes]:
    """The records of a batch of ``git ls-tree -z`` output (``... TAB path NUL`` each)
    whose file name may be a build file or is one of ``also``; ``select_build_files``
    decides exactly. The batch is scanned reversed, where each file name directly
    follows a NUL: the expression is tried once per record in C, instead of at every
    slash (five times fewer attempts, the bulk of the planner's listing time)."""
    reversed_batch = batch[::-1]
    found = []
    for match in _reversed_pattern(also).finditer(reversed_batch):
        start = match.start() + 1
        end = reversed_batch.find(b"\0", start)
        found.append(reversed_batch[start : end if end >= 0 else None][::-1])
    return found


@lru_cache(maxsize=8)
def _reversed_pattern(also: frozenset[str]) -> re.Pattern[bytes]:
    """NUL, then a known name reversed and the slash or tab before it, or a known suffix
    reversed; built as a trie so the engine never retries alternatives sharing a
    prefix."""
    ends = [(name, b"(?=[/\t])") for name in _NAMES | also]
    ends += [(suffix, b"") for suffix in _SUFFIXES]
    trie: dict[bytes, Any] = {}
    for text, end in ends:
        node = trie
        for byte in text.encode()[::-1]:
            node = node.setdefault(bytes([byte]), {})
        node[end] = None

    def regex(node: dict[bytes, Any]) -> bytes:
        branches = [
            end if child is None else re.escape(end) + regex(child)
            for end, child in sorted(node.items())
        ]
        return branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"

    return re.compile(b"\0" + regex(trie))


def select_build_files(paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """(files discovery reads, files whose presence alone matters), each sorted."""
    read: list[str] = []
    present: list[str] = []
    for path in paths:
        name = path.rpartition("/")[2]
        if name in _ROOT_ONLY:
            if name == path:
                read.append(path)
            continue
        if name not in _NAMES and not name.endswith(_SUFFIXES):
            continue
        if not IGNORED_DIRS.isdisjoint(path.split("/")[:-1]):
            continue
        (present if name in _PRESENT else read).append(path)
    return sorted(read), sorted(present)


def discover(sources: Sources) -> Discovery:
    merged = EcosystemResult()
    for ecosystem in ECOSYSTEMS:
        found = ecosystem.discover(sources)
        merged.projects += found.projects
        merged.unreadable += found.unreadable
        merged.global_paths |= found.global_paths
    projects = fold_nested(merged.projects)
    assign_names(projects)
    resolve_edges(projects)
    return Discovery(
        projects=sorted(projects, key=lambda p: p.name),
        unreadable=sorted(set(merged.unreadable), key=lambda u: (u.path, u.ecosystem)),
        global_paths=sorted(merged.global_paths),
    )


NESTED_DIRS = frozenset(
    {"examples", "example", "samples", "fixtures", "__fixtures__", "testdata", "tests", "test"}
)


_NESTED = re.compile(r"(?:^|/)(?:" + "|".join(sorted(NESTED_DIRS)) + r"|[^/]*-examples)(?:/|$)")


def _nested_in(root: str, enclosing: str) -> bool:
    """Whether ``root`` lies in an examples/fixtures/test directory below ``enclosing``."""
    rel = root if enclosing == "." else root[len(enclosing) + 1 :]
    return any(c in NESTED_DIRS or c.endswith("-examples") for c in rel.split("/"))


def fold_nested(projects: list[Project]) -> list[Project]:
    """A manifest under another project's examples, samples, fixtures, testdata or test
    directories belongs to that enclosing project unless a workspace names it: it is not
    a project, and what it depends on or provides becomes the enclosing project's (its
    files are the enclosing project's files, so a change there impacts that project)."""
    by_root: dict[str, list[Project]] = defaultdict(list)
    for project in projects:
        by_root[project.root].append(project)
    kept = []
    for project in sorted(projects, key=lambda p: -p.root.count("/")):  # innermost first
        if not _NESTED.search(project.root):  # most projects: nothing to look up
            kept.append(project)
            continue
        enclosing = next(
            (
                by_root[a][0]
                for a in ancestors(parent_dir(project.root))
                if a in by_root and a != project.root and _nested_in(project.root, a)
            ),
            None,
        ) if project.root != "." and not project.member else None  # fmt: skip
        if enclosing is None:
            kept.append(project)
            continue
        enclosing.provides += project.provides
        enclosing.requires += project.requires
        enclosing.path_deps += [p for p in project.path_deps if p != enclosing.root]
        enclosing.mechanisms = {**project.mechanisms, **enclosing.mechanisms}
    return kept


def assign_names(projects: list[Project]) -> None:
    """The project root is the name; roots shared by several projects get the ecosystem
    (and, if still ambiguous, the manifest file) in brackets: ``web[node]``."""
    by_root: dict[str, list[Project]] = defaultdict(list)
    for project in projects:
        by_root[project.root].append(project)
    for root, group in by_root.items():
        if len(group) == 1:
            group[0].name = root
            continue
        per_ecosystem: dict[str, int] = defaultdict(int)
        for project in group:
            per_ecosystem[project.ecosystem] += 1
        for project in group:
            tag = project.ecosystem
            if per_ecosystem[tag] > 1:
                tag = f"{tag}:{basename(project.manifest)}"
            project.name = f"{root}[{tag}]"


def resolve_edges(projects: list[Project]) -> None:
    """Turn required keys and path dependencies into project names (same ecosystem for
    paths that name a directory; an exact manifest path names one project)."""
    by_key: dict[str, set[str]] = defaultdict(set)
    by_root: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_manifest: dict[str, str] = {}
    for project in projects:
        for key in project.provides:
            by_key[key].add(project.name)
        by_root[(project.ecosystem, project.root)].add(project.name)
        by_manifest[project.manifest] = project.name
    providers = {key: sorted(names) for key, names in by_key.items()}  # sorted once
    for project in projects:
        deps: dict[str, str | None] = {}
        for key in project.requires:
            for dep in providers.get(key, ()):
                deps[dep] = deps.get(dep) or project.mechanisms.get(key)
        for target in project.path_deps:
            found = {by_manifest[target]} if target in by_manifest else set()
            found = found or by_root.get((project.ecosystem, target), set())
            for dep in sorted(found):
                deps[dep] = deps.get(dep) or project.mechanisms.get(target)
        deps.pop(project.name, None)
        project.deps = sorted(deps)
        project.via = {name: how for name, how in sorted(deps.items()) if how}
