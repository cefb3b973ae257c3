"""``plan_repository``: read the head commit, pick the source (ci.ai.yaml, a matching
recipe, discovery), analyse the change and build the plan. Pure function of its inputs:
the same repository state, shas, policy and recipe give byte-identical JSON."""

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from planner import lockfiles
from planner.classify import CONFIG_PATH, GLOBAL, PathRules
from planner.config import Config, parse_config
from planner.config_plan import config_candidates
from planner.construct import discovery_candidates
from planner.discovery import ECOSYSTEMS, discover
from planner.discovery.common import Sources, basename
from planner.discovery.model import Discovery
from planner.errors import PlanError
from planner.explain import explain_config, explain_discovery
from planner.git import ABSENT, BlobReader, Entry, Git, GitError, background
from planner.graph import ProjectGraph
from planner.impact import analyse, expand_changes
from planner.jobs import finalize
from planner.manifests import ManifestError
from planner.policy import PlannerPolicy
from planner.reading import Listing, diff_base
from planner.recipe import fingerprint, load_recipe, make_recipe

PLAN_VERSION = 1


@dataclass
class Plan:
    source: str  # "config" | "recipe" | "discovery" | "fallback"
    fingerprint: str
    base_sha: str | None
    head_sha: str
    changed_paths: list[str]
    jobs: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    fallback_reason: str | None
    explain: str
    policies: dict[str, Any] = field(default_factory=dict)
    discovery: Discovery | None = field(default=None, repr=False)  # None for config plans
    version: int = PLAN_VERSION

    @cached_property
    def recipe(self) -> dict[str, Any] | None:
        """What to persist after a successful discovery-planned run (built on demand)."""
        return make_recipe(self.discovery, self.fingerprint) if self.discovery else None

    def to_dict(self) -> dict[str, Any]:
        """The plan as planning.md's "Plan output" (plus ``policies``), fresh copies."""
        data: dict[str, Any] = json.loads(self.to_json())
        return data

    def to_json(self) -> bytes:
        """Canonical UTF-8 JSON: sorted keys, no insignificant whitespace."""
        data = {
            "version": self.version,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "base_sha": self.base_sha,
            "head_sha": self.head_sha,
            "changed_paths": self.changed_paths,
            "jobs": self.jobs,
            "skipped": self.skipped,
            "fallback_reason": self.fallback_reason,
            "explain": self.explain,
            "policies": self.policies,
        }
        # check_circular off: a plan is built of fresh, acyclic lists and dicts (a cycle
        # would still fail, as RecursionError); the check cost ~9 % of the encoding
        return json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
        ).encode()


def plan_repository(
    repo_path: str,
    head_sha: str,
    base_sha: str | None,
    policy: PlannerPolicy,
    recipe: dict[str, Any] | None = None,
    diff_unavailable_reason: str | None = None,
) -> Plan:
    """Plan the jobs for ``head_sha`` compared with ``base_sha`` (None: no diff)."""
    with _collector_paused():
        return _plan(repo_path, head_sha, base_sha, policy, recipe, diff_unavailable_reason)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Planning allocates many small, acyclic objects; the cyclic collector would rescan
    them again and again (a third of the time on a 2,000-project monorepo). Reference
    counting still frees everything; the collector resumes afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(
    repo_path: str,
    head_sha: str,
    base_sha: str | None,
    policy: PlannerPolicy,
    recipe: dict[str, Any] | None,
    diff_unavailable_reason: str | None,
) -> Plan:
    git = Git(repo_path)
    try:
        with git.blobs() as reader:
            head = _head(git, reader, repo_path, head_sha)
            listing = Listing(reader, head, parse=recipe is None)
            scan = background(git.scan_tree, head, listing)
            try:
                base, diff_reason = diff_base(git, reader, base_sha, head, diff_unavailable_reason)
                changed = expand_changes(git.changed_paths(base, head)) if base else []
            finally:
                scan.exception()  # never leave the listing running
            scan.result()
            rules = PathRules()
            if listing.config is not None:
                config, hashes = _read_config(reader, listing.config, policy, head)
                if config.jobs:
                    return _plan_config(config, hashes, head, base, changed, diff_reason, policy)
                rules = config.rules  # a ci.ai.yaml that only tunes discovery
            return _plan_discovery(
                reader, listing, policy, head, base, changed, diff_reason, recipe, rules
            )
    except GitError as exc:
        raise PlanError(f"repository: {exc}") from exc


def _head(git: Git, reader: BlobReader, repo_path: str, head_sha: str) -> str:
    """The full sha of the head commit, resolved by the plan's cat-file (it stops at once
    when ``repo_path`` is no repository)."""
    not_a_repository = PlanError(f"repo_path: {repo_path} is not a git repository")
    try:
        head = reader.commit(head_sha)
    except GitError:
        if git.is_repository():
            raise  # a repository git cannot read: say so, as for any other read
        raise not_a_repository from None
    if head is not None:
        return head
    if not git.is_repository():
        raise not_a_repository
    raise PlanError(f"head_sha: {head_sha!r} is not a commit in the repository")


def _read_config(
    reader: BlobReader, config_entry: Entry, policy: PlannerPolicy, head: str
) -> tuple[Config, dict[str, str]]:
    """The validated ci.ai.yaml and the hashes of the files it read."""
    [blob] = reader.read(head, [config_entry], policy.max_config_bytes)
    if blob.problem:
        raise PlanError(f"{CONFIG_PATH}: {blob.problem}")
    hashes: dict[str, str] = {CONFIG_PATH: blob.sha256}

    def file_hash(path: str) -> str | None:
        [found] = reader.read(head, [path], -1)
        if found.problem:
            return None
        hashes[path] = found.sha256
        return found.sha256

    return parse_config(blob.content, blob.size, policy, file_hash), hashes


def _plan_config(
    config: Config,
    hashes: dict[str, str],
    head: str,
    base: str | None,
    changed: list[str],
    diff_reason: str | None,
    policy: PlannerPolicy,
) -> Plan:
    jobs, skipped = finalize(config_candidates(config, changed, diff_reason), policy)
    return Plan(
        source="config",
        fingerprint=fingerprint(hashes),
        base_sha=base,
        head_sha=head,
        changed_paths=changed,
        jobs=jobs,
        skipped=skipped,
        fallback_reason=f"diff unavailable: {diff_reason}" if diff_reason else None,
        explain=explain_config(len(config.jobs), changed, diff_reason, base, head, jobs, skipped),
        policies=config.policies,
    )


def _plan_discovery(
    reader: BlobReader,
    listing: Listing,
    policy: PlannerPolicy,
    head: str,
    base: str | None,
    changed: list[str],
    diff_reason: str | None,
    recipe: dict[str, Any] | None,
    rules: PathRules,
) -> Plan:
    blobs = listing.blobs()
    entries: dict[str, str | None] = dict.fromkeys(listing.present)
    entries.update({p: b.problem or b.sha256 for p, b in blobs.items()})
    fp = fingerprint(entries)
    discovery = load_recipe(recipe, fp) if recipe is not None else None
    source = "recipe" if discovery is not None else "discovery"
    if discovery is None:
        discovery = discover(Sources(blobs, set(entries), parsed=listing.parsed))
    if not discovery.projects:
        raise PlanError(_nothing_found(discovery))
    graph = ProjectGraph(discovery.projects)
    locks = _lockfile_changes(reader, discovery, changed, base, head, rules)
    impact = analyse(graph, discovery, changed, diff_reason, rules, locks)
    jobs, skipped = finalize(
        discovery_candidates(discovery.projects, impact, policy, listing.oids), policy
    )
    if diff_reason is not None:
        source = "fallback"
    return Plan(
        source=source,
        fingerprint=fp,
        base_sha=base,
        head_sha=head,
        changed_paths=changed,
        jobs=jobs,
        skipped=skipped,
        fallback_reason="; ".join(impact.fallback_reasons) or None,
        explain=explain_discovery(source, discovery, impact, base, head, jobs, skipped),
        discovery=discovery,
    )


def _lockfile_changes(
    reader: BlobReader,
    discovery: Discovery,
    changed: list[str],
    base: str | None,
    head: str,
    rules: PathRules,
) -> dict[str, dict[str, list[str]]]:
    """Changed workspace lockfiles (global by the rules) that can be read at base and head,
    with the projects whose resolution changed; the others stay global files."""
    discovered = frozenset(discovery.global_paths)
    wanted = [
        p
        for p in changed
        if basename(p) in lockfiles.READERS
        and rules.kind(p, discovered) == GLOBAL
        and rules.declared(p) is None
    ]
    found: dict[str, dict[str, list[str]]] = {}
    for path in wanted:
        if base is None:
            break
        sides = [reader.read(c, [path], lockfiles.MAX_LOCKFILE_BYTES)[0] for c in (base, head)]
        if any(s.content is None and s.problem != ABSENT for s in sides):
            continue  # too large, a symlink out, ...: a global file, as before
        contents = [None if s.problem == ABSENT else s.content for s in sides]
        try:
            found[path] = lockfiles.impacted_projects(
                path, contents[0], contents[1], discovery.projects
            )
        except ManifestError:
            continue  # unreadable: a global file, as before
    return found


def _nothing_found(discovery: Any) -> list[str]:
    names = [n for e in ECOSYSTEMS for n in (*e.READ_NAMES, *e.PRESENT_NAMES)]
    names += [f"*{s}" for e in ECOSYSTEMS for s in getattr(e, "READ_SUFFIXES", ())]
    build_files = [n for n in dict.fromkeys(names) if not n.endswith((".lock", ".sum"))]
    problems = [
        f"no ci.ai.yaml, and discovery found no project: looked for {', '.join(build_files)} "
        "(and a root Makefile with build/test/lint targets); add a ci.ai.yaml"
    ]
    problems += [f"{u.path}: unreadable ({u.message})" for u in discovery.unreadable]
    return problems
