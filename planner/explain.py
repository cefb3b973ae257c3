"""The ``explain`` paragraph: what was planned, from what, and why — in plain words."""

from collections import Counter
from typing import Any

from planner import codes
from planner.discovery.model import Discovery
from planner.impact import Impact, listing

_SOURCES = {
    "discovery": "discovered projects",
    "recipe": "a saved recipe (the build files are unchanged since it was discovered)",
    "fallback": "discovered projects, planned in full because the diff is unavailable",
    "config": "ci.ai.yaml",
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _range(base: str | None, head: str) -> str:
    return f"between {base[:12]} and {head[:12]}" if base else f"at {head[:12]}"


def _outcome(jobs: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> str:
    run = Counter(j["reason_code"] for j in jobs)
    skip = Counter(s["reason_code"] for s in skipped)
    ran = ", ".join(f"{n} {c}" for c, n in sorted(run.items()))
    text = f"{_plural(len(jobs), 'job')} run" + (f" ({ran})" if ran else "")
    if skipped:
        text += (
            f" and {len(skipped)} skipped ("
            + ", ".join(f"{n} {c}" for c, n in sorted(skip.items()))
            + ")"
        )
    text += "."
    if not jobs:
        text += " With nothing to run, the run still reports success."
    if run.get(codes.POLICY_FULL):
        text += " The repository's planning mode is full, so nothing is skipped."
    if run.get(codes.REQUIRED_BY_POLICY):
        text += " Jobs required by policy run regardless of the change."
    if any(j["allow_failure"] for j in jobs):
        text += " Lint and other allow-failure jobs cannot fail the run."
    return text


def explain_discovery(
    source: str,
    discovery: Discovery,
    impact: Impact,
    base: str | None,
    head: str,
    jobs: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
) -> str:
    ecosystems = Counter(p.ecosystem for p in discovery.projects)
    found = ", ".join(f"{n} {e}" for e, n in sorted(ecosystems.items()))
    parts = [
        f"Planned from {_SOURCES[source]}: {_plural(len(discovery.projects), 'project')} ({found})."
    ]
    if impact.diff_reason is not None:
        parts.append(f"The diff is unavailable ({impact.diff_reason}), so every project runs.")
    elif not impact.changed_paths:
        parts.append(f"No files changed {_range(base, head)}.")
    else:
        parts.append(f"{_plural(len(impact.changed_paths), 'path')} changed {_range(base, head)}.")
        direct = sorted(impact.direct)
        if direct:
            parts.append(f"Changed directly: {listing(direct, 5)}.")
        dependents = sorted(n for n, w in impact.runs.items() if w.code == codes.DEPENDENCY_CHANGED)
        if dependents:
            parts.append(
                f"{_plural(len(dependents), 'dependent project')} ({listing(dependents, 5)}) "
                "run because what they depend on changed."
            )
        if impact.lockfiles:
            locked = sorted({n for projects in impact.lockfiles.values() for n in projects})
            parts.append(
                f"Lockfiles changed ({listing(sorted(impact.lockfiles))}), read at both "
                f"commits: {_plural(len(locked), 'project')} resolve changed packages."
            )
        if impact.global_files:
            parts.append(f"Global files changed ({listing(impact.global_files)}): everything runs.")
        if impact.unknown_files:
            parts.append(
                f"No rule explains {listing(impact.unknown_files)}, so everything runs "
                "(unknown impact expands the plan)."
            )
        if impact.non_build:
            parts.append(
                f"Files no build reads changed ({listing(impact.non_build)}): they widen nothing."
            )
        if impact.docs_only:
            parts.append("Only documentation changed, so no test work is needed.")
        elif impact.docs:
            parts.append(f"Documentation changes ({listing(impact.docs)}) need no test work.")
    if discovery.unreadable:
        ecosystems_hit = sorted({u.ecosystem for u in discovery.unreadable})
        parts.append(
            f"{listing([u.path for u in discovery.unreadable])} could not be read, so every "
            f"{'/'.join(ecosystems_hit)} project runs."
        )
    parts.append(_outcome(jobs, skipped))
    return " ".join(parts)


def explain_config(
    config_jobs: int,
    changed: list[str],
    diff_reason: str | None,
    base: str | None,
    head: str,
    jobs: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
) -> str:
    parts = [f"Planned from ci.ai.yaml: {_plural(config_jobs, 'job')} declared."]
    if diff_reason is not None:
        parts.append(f"The diff is unavailable ({diff_reason}), so paths filters do not apply.")
    elif changed:
        parts.append(f"{_plural(len(changed), 'path')} changed {_range(base, head)}.")
    else:
        parts.append(f"No files changed {_range(base, head)}.")
    parts.append(_outcome(jobs, skipped))
    return " ".join(parts)
