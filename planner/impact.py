"""Impact analysis: which projects a change affects, and the sentence that says why.

Rules (planning.md), in order of precedence for one project: its own files changed,
a dependency changed (transitively), a global file changed, a path no rule explains,
a manifest of its ecosystem could not be read. Documentation never impacts anything.
A missing diff impacts everything. Every rule expands the plan; none shrinks it.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from planner import codes
from planner.classify import DOC, GLOBAL, NON_BUILD, PathRules, is_global
from planner.discovery.model import Discovery
from planner.graph import ProjectGraph

TRIGGER_LIMIT = 100  # triggered_by lists are capped; changed_paths has them all


def listing(paths: list[str], shown: int = 3) -> str:
    """``a, b, c and 4 more`` — short enough for a sentence."""
    head = ", ".join(paths[:shown])
    return f"{head} and {len(paths) - shown} more" if len(paths) > shown else head


@dataclass(frozen=True)
class Why:
    code: str
    reason: str
    triggered_by: list[str]


@dataclass
class Impact:
    changed_paths: list[str]
    diff_reason: str | None = None  # set when the diff is unavailable
    runs: dict[str, Why] = field(default_factory=dict)  # impacted project -> why
    direct: dict[str, list[str]] = field(default_factory=dict)  # project -> its files
    docs: list[str] = field(default_factory=list)
    non_build: list[str] = field(default_factory=list)  # files no build reads
    docs_in: dict[str, list[str]] = field(default_factory=dict)
    global_files: list[str] = field(default_factory=list)
    # lockfile -> {project -> changed packages it resolves}, for lockfiles read both ways
    lockfiles: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    unknown_files: list[str] = field(default_factory=list)
    fallback_reasons: list[str] = field(default_factory=list)

    @property
    def docs_only(self) -> bool:
        return bool(self.changed_paths) and len(self.docs) == len(self.changed_paths)

    @property
    def no_build_input(self) -> bool:
        """Only documentation and files no build reads changed (at least one of those)."""
        quiet = len(self.docs) + len(self.non_build)
        return bool(self.non_build) and quiet == len(self.changed_paths)


def expand_changes(changes: list[tuple[str, list[str]]]) -> list[str]:
    """Every path a change touches: renames and copies count old and new path."""
    return sorted({path for _, paths in changes for path in paths})


def analyse(
    graph: ProjectGraph,
    discovery: Discovery,
    changed_paths: list[str],
    diff_reason: str | None,
    rules: PathRules | None = None,
    lockfiles: dict[str, dict[str, list[str]]] | None = None,
) -> Impact:
    """``lockfiles``: the changed global lockfiles that could be read at base and head,
    with the projects whose resolution changed (the others stay global files)."""
    impact = Impact(changed_paths=changed_paths, diff_reason=diff_reason)
    impact.lockfiles = dict(lockfiles or {})
    names = sorted(graph.projects)
    if diff_reason is not None:
        impact.fallback_reasons.append(f"diff unavailable: {diff_reason}")
        why = Why(
            codes.DIFF_UNAVAILABLE,
            f"the diff is unavailable ({diff_reason}), so every project is planned",
            [],
        )
        impact.runs = dict.fromkeys(names, why)
    else:
        _classify(graph, discovery, impact, rules or PathRules())
        _propagate(graph, impact, names)
    _unreadable(graph, discovery, impact, names)
    return impact


def _classify(graph: ProjectGraph, discovery: Discovery, impact: Impact, rules: PathRules) -> None:
    global_paths = frozenset(discovery.global_paths)
    direct: dict[str, list[str]] = defaultdict(list)
    docs_in: dict[str, list[str]] = defaultdict(list)
    for path in impact.changed_paths:
        owners = graph.owners(path)
        kind = rules.kind(path, global_paths)
        if kind == DOC and any(o.root.split("/")[0] == "docs" for o in owners):
            kind = GLOBAL if is_global(path, global_paths) else None  # a docs site builds
        if kind == DOC:
            impact.docs.append(path)
            for owner in owners:
                docs_in[owner.name].append(path)
        elif kind == NON_BUILD:
            impact.non_build.append(path)
        elif kind == GLOBAL and path in impact.lockfiles:
            pass  # read both ways: only the projects it changed are impacted
        elif kind == GLOBAL:
            impact.global_files.append(path)
        elif owners:
            for owner in owners:
                direct[owner.name].append(path)
        else:
            impact.unknown_files.append(path)
    impact.direct = dict(direct)
    impact.docs_in = dict(docs_in)


def _propagate(graph: ProjectGraph, impact: Impact, names: list[str]) -> None:
    for name in sorted(impact.direct):
        files = impact.direct[name]
        reason = f"{name} changed ({listing(files)})"
        impact.runs[name] = Why(codes.FILE_CHANGED, reason, files[:TRIGGER_LIMIT])
    origins = {name: f"{name} changed ({listing(files)})" for name, files in impact.direct.items()}
    triggers = dict(impact.direct)
    for lockfile, projects in sorted(impact.lockfiles.items()):
        for name, packages in sorted(projects.items()):
            if name in graph.projects and name not in triggers:
                origins[name] = f"{lockfile} changed what {name} resolves ({listing(packages)})"
                triggers[name] = [lockfile]
                impact.runs[name] = Why(codes.LOCKFILE_CHANGED, origins[name], [lockfile])
    for name, chain in sorted(graph.dependents_of(list(triggers)).items()):
        source, files = chain[0], triggers[chain[0]]
        reason = f"{origins[source]} and {depends_sentence(graph, chain)}"
        impact.runs[name] = Why(codes.DEPENDENCY_CHANGED, reason, files[:TRIGGER_LIMIT])
    if impact.global_files:
        files = impact.global_files
        reason = f"global file changed ({listing(files)}), so every project is planned"
        _everyone(impact, names, Why(codes.GLOBAL_FILE_CHANGED, reason, files[:TRIGGER_LIMIT]))
    if impact.unknown_files:
        files = impact.unknown_files
        reason = (
            f"no rule explains {listing(files)}, so every project is planned "
            "(unknown impact expands the plan, never shrinks it)"
        )
        _everyone(impact, names, Why(codes.UNKNOWN_IMPACT, reason, files[:TRIGGER_LIMIT]))


def depends_sentence(graph: ProjectGraph, chain: list[str]) -> str:
    """``b depends on a through [patch.crates-io]``; a longer chain names its hops and
    each hop's mechanism when it is not a plain dependency."""
    name, source = chain[-1], chain[0]
    hops = [graph.projects[chain[i]].via.get(chain[i - 1]) for i in range(1, len(chain))]
    if len(chain) == 2:
        return f"{name} depends on {source}" + (f" through {hops[0]}" if hops[0] else "")
    text = f"{name} depends on {source} via {' -> '.join(chain[1:-1])}"
    named = [f"{chain[i + 1]} on {chain[i]} through {how}" for i, how in enumerate(hops) if how]
    return text + (f" ({'; '.join(named)})" if named else "")


def _unreadable(
    graph: ProjectGraph, discovery: Discovery, impact: Impact, names: list[str]
) -> None:
    by_ecosystem: dict[str, list[str]] = defaultdict(list)
    for item in discovery.unreadable:
        by_ecosystem[item.ecosystem].append(f"{item.path} ({item.message})")
        impact.fallback_reasons.append(
            f"manifest unreadable: {item.path} ({item.message}); "
            f"every {item.ecosystem} project is planned"
        )
    for ecosystem, problems in sorted(by_ecosystem.items()):
        paths = [u.path for u in discovery.unreadable if u.ecosystem == ecosystem]
        reason = (
            f"{listing(problems, 2)} could not be read, so the {ecosystem} dependency graph "
            f"is unknown and every {ecosystem} project is planned"
        )
        members = [n for n in names if graph.projects[n].ecosystem == ecosystem]
        _everyone(impact, members, Why(codes.MANIFEST_UNREADABLE, reason, paths))


def _everyone(impact: Impact, names: list[str], why: Why) -> None:
    for name in names:
        impact.runs.setdefault(name, why)
