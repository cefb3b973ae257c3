"""Delta CI's diff-aware planner: pure Python, no Django, deterministic.

    plan = plan_repository(repo_path, head_sha, base_sha, PlannerPolicy(...), recipe=None)
    plan.to_json()  # canonical bytes, identical for identical inputs

Sources in order: ci.ai.yaml (authoritative), a recipe whose fingerprint matches,
discovery; nothing discoverable raises PlanError. ``source`` is "fallback" when a
discovery/recipe plan had to run everything because the diff is unavailable.
The rules are planning.md's; each module's docstring says which one it owns.
"""

from planner.errors import PlanError
from planner.plan import Plan, plan_repository
from planner.policy import PlannerPolicy

__all__ = ["Plan", "PlanError", "PlannerPolicy", "plan_repository"]
