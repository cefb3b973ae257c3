"""The last step shared by every source: planning mode, required jobs, the needs
closure and the limits. Works on candidates that already know whether and why they run.

If a job runs, every job it needs runs too: a pulled-in job has the code NEEDED_BY and
says why in its reason ("needed by X, which runs because ...").
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from planner import codes
from planner.errors import PlanError
from planner.impact import Why
from planner.policy import PlannerPolicy


@dataclass(slots=True)
class Candidate:
    """A job that may run. Its full spec is built only if it does: most jobs of a big
    monorepo are skipped, and a skipped entry needs only name, project and reason."""

    name: str
    project: str
    needs: list[str]
    make_spec: Callable[[], dict[str, Any]]  # every job field except the reason fields
    run: bool
    why: Why
    _spec: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def spec(self) -> dict[str, Any]:
        if self._spec is None:
            self._spec = self.make_spec()
        return self._spec


def finalize(
    candidates: list[Candidate], policy: PlannerPolicy
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    by_name = {c.name: c for c in candidates}
    if policy.planning_mode == "full":
        for c in candidates:
            if not c.run and c.why.code != codes.NO_SCRIPT:  # it would do nothing
                reason = f"planning mode is full, so it runs although {_lower(c.why.reason)}"
                c.run, c.why = True, Why(codes.POLICY_FULL, reason, [])
    problems = []
    for name in policy.required_jobs:
        candidate = by_name.get(name)
        if candidate is None:
            problems.append(f"policy.required_jobs: {name!r} is not a job of this repository")
            continue
        candidate.spec["required"] = True
        if not candidate.run:
            reason = (
                f"required by the repository policy (otherwise: {_lower(candidate.why.reason)})"
            )
            candidate.run, candidate.why = True, Why(codes.REQUIRED_BY_POLICY, reason, [])
    if problems:
        raise PlanError(problems)
    _close_needs(candidates, by_name)
    running = [c for c in candidates if c.run]
    image_problems: dict[str, str | None] = {}
    for c in running:
        image = c.spec["image"]
        if image not in image_problems:
            image_problems[image] = policy.image_problem(image)
        if image_problems[image]:
            problems.append(f"{c.name}.image: {image_problems[image]}")
    if len(running) > policy.max_jobs:
        problems.append(
            f"plan: {len(running)} jobs, more than the policy limit of {policy.max_jobs}"
        )
    if problems:
        raise PlanError(problems)
    jobs = [
        {
            **c.spec,
            "reason_code": c.why.code,
            "reason": c.why.reason,
            "triggered_by": c.why.triggered_by,
        }
        for c in running
    ]
    skipped = [
        {
            "name": c.name,
            "project": c.project,
            "reason_code": c.why.code,
            "reason": c.why.reason,
        }
        for c in candidates
        if not c.run
    ]
    return jobs, skipped


def _close_needs(candidates: list[Candidate], by_name: dict[str, Candidate]) -> None:
    origin = {c.name: c.why.reason for c in candidates if c.run}
    queue = [c for c in candidates if c.run]
    while queue:
        dependent = queue.pop(0)
        for need in dependent.needs:
            needed = by_name[need]
            if needed.run:
                continue
            why = origin[dependent.name]
            origin[need] = why
            reason = f"needed by {dependent.name}, which runs because {_lower(why)}"
            needed.run = True
            needed.why = Why(codes.NEEDED_BY, reason, dependent.why.triggered_by)
            queue.append(needed)


def _lower(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:] if sentence[1:2].islower() else sentence
