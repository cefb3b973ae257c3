"""Plan construction for discovered projects: ``build``, ``test`` and ``lint`` per project
(lint may fail), ``test`` and ``lint`` need the same project's ``build``.

Job names are ``<project>:<kind>``; the repository root project is named ``.`` so its
jobs are ``.:build``, ``.:test``, ``.:lint`` (no directory can be called ".", so the
name never collides with a real project the way "root" could). Names longer than 255
characters are shortened (see job_name)."""

import hashlib
from functools import partial
from typing import Any

from planner import codes
from planner.caches import caches_for
from planner.discovery.model import KINDS, Project
from planner.impact import Impact, Why, listing
from planner.jobs import Candidate
from planner.policy import PlannerPolicy

MAX_JOB_NAME = 255  # the name column's width


def job_name(project: str, kind: str) -> str:
    """A project path too long for a job name keeps its start and its end, with a digest
    of the whole path between: still unique, stable from run to run, and readable."""
    name = f"{project}:{kind}"
    if len(name) <= MAX_JOB_NAME:
        return name
    digest = hashlib.sha256(project.encode()).hexdigest()[:16]
    room = MAX_JOB_NAME - len(kind) - len(digest) - 3  # two "~" and the ":"
    head, tail = project[: room // 2], project[len(project) - (room - room // 2) :]
    return f"{head}~{digest}~{tail}:{kind}"


def _skip_why(project: Project, impact: Impact) -> Why:
    if impact.no_build_input:
        files = listing(impact.non_build)
        reason = f"only files no build reads changed ({files}): no test work needed"
        return Why(codes.NON_BUILD, reason, [])
    if impact.docs_only:
        reason = f"only documentation changed ({listing(impact.docs)}): no test work needed"
        return Why(codes.DOCS_ONLY, reason, [])
    if project.name in impact.docs_in:
        docs = impact.docs_in[project.name]
        reason = f"only documentation changed in {project.name} ({listing(docs)})"
        return Why(codes.DOCS_ONLY, reason, [])
    if not impact.changed_paths:
        return Why(codes.NOT_AFFECTED, "no files changed between base and head", [])
    return Why(codes.NOT_AFFECTED, f"no change in {project.name} or its dependencies", [])


def _spec(
    project: Project, kind: str, policy: PlannerPolicy, oids: dict[str, str]
) -> dict[str, Any]:
    return {
        "name": job_name(project.name, kind),
        "project": project.name,
        "ecosystem": project.ecosystem,
        "image": project.image,
        "workdir": project.root,
        "steps": list(project.steps[kind]),
        "needs": _needs(project, kind),
        "required": kind != "lint",
        "allow_failure": kind == "lint",
        "retries": policy.default_retries,
        "timeout_seconds": policy.default_timeout_seconds,
        "artifacts": [],
        "caches": caches_for(project, oids) if policy.caching_enabled else [],
        "runs_on": [],
        "env": {},
        "secrets": [],
        "limits": {},
    }


def _needs(project: Project, kind: str, build: str = "") -> list[str]:
    """What a job of ``kind`` needs (``build``: the project's build job name, if known)."""
    if kind == "build" or "build" in project.no_script:
        return []
    return [build or job_name(project.name, "build")]


def discovery_candidates(
    projects: list[Project], impact: Impact, policy: PlannerPolicy, oids: dict[str, str]
) -> list[Candidate]:
    """Three candidates per project; ``oids`` (build file -> object id) key the caches."""
    candidates: list[Candidate] = []
    for project in projects:
        impacted = impact.runs.get(project.name)
        why = impacted or _skip_why(project, impact)
        build = job_name(project.name, "build")
        for kind in KINDS:
            idle = project.no_script.get(kind)
            candidates.append(
                Candidate(  # positional: 6,000 of them on a 2,000-project monorepo
                    build if kind == "build" else job_name(project.name, kind),
                    project.name,
                    _needs(project, kind, build),
                    partial(_spec, project, kind, policy, oids),
                    impacted is not None and idle is None,
                    Why(codes.NO_SCRIPT, f"nothing to {kind}: {idle}", []) if idle else why,
                )
            )
    return candidates
