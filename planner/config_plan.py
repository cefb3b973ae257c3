"""Plan construction for ``ci.ai.yaml``: the file is authoritative, diff-awareness only
comes from each job's ``paths`` filter. A change to ci.ai.yaml itself, or to a file its
``planning.global`` globs name, runs every job; files its ``planning.ignore`` globs name
never match a ``paths`` filter."""

from functools import partial

from planner import codes
from planner.classify import GLOBAL, NON_BUILD, PathRules
from planner.config import FILE, Config
from planner.globs import compile_glob
from planner.impact import TRIGGER_LIMIT, Why, listing
from planner.jobs import Candidate


def _why(
    paths: list[str] | None, changed: list[str], diff_reason: str | None, rules: PathRules
) -> Why:
    if paths is None:
        return Why(codes.ALWAYS, "no paths filter: runs on every change", [])
    if diff_reason is not None:
        reason = f"the diff is unavailable ({diff_reason}), so its paths filter cannot apply"
        return Why(codes.DIFF_UNAVAILABLE, reason, [])
    if FILE in changed:
        return Why(codes.GLOBAL_FILE_CHANGED, f"{FILE} changed, so every job runs", [FILE])
    kinds = {path: rules.declared(path) for path in changed}
    if declared := [p for p in changed if kinds[p] == GLOBAL]:
        reason = f"planning.global names {listing(declared)}, so every job runs"
        return Why(codes.GLOBAL_FILE_CHANGED, reason, declared[:TRIGGER_LIMIT])
    changed = [p for p in changed if kinds[p] != NON_BUILD]
    patterns = [compile_glob(p) for p in paths]
    matched = [c for c in changed if any(p.fullmatch(c) for p in patterns)]
    if matched:
        reason = f"changed paths match {', '.join(paths)}: {listing(matched)}"
        return Why(codes.PATHS_MATCHED, reason, matched[:TRIGGER_LIMIT])
    if not changed:
        return Why(codes.PATHS_NOT_MATCHED, "no files changed between base and head", [])
    return Why(codes.PATHS_NOT_MATCHED, f"no changed path matches {', '.join(paths)}", [])


def config_candidates(
    config: Config, changed: list[str], diff_reason: str | None
) -> list[Candidate]:
    candidates = []
    for job in config.jobs:
        why = _why(job.paths, changed, diff_reason, config.rules)
        candidates.append(
            Candidate(
                name=job.name,
                project=job.spec["project"],
                needs=job.spec["needs"],
                make_spec=partial(dict, job.spec),
                run=why.code != codes.PATHS_NOT_MATCHED,
                why=why,
            )
        )
    return candidates
