"""The repository policy as the planner sees it: plain values, no database."""

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

PLANNING_MODES = ("diff", "full")


@dataclass(frozen=True)
class PlannerPolicy:
    """What the repository's policy allows and demands of a plan.

    Sequences are frozen into tuples so a policy can be shared and hashed safely.
    """

    allowed_images: Sequence[str] = ("*",)
    required_jobs: Sequence[str] = ()
    planning_mode: str = "diff"
    default_timeout_seconds: int = 3600
    default_retries: int = 0
    max_jobs: int = 500
    max_config_bytes: int = 256 * 1024
    caching_enabled: bool = True  # discovered jobs declare their ecosystem's caches

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_images", tuple(self.allowed_images))
        object.__setattr__(self, "required_jobs", tuple(self.required_jobs))
        if self.planning_mode not in PLANNING_MODES:
            raise ValueError(f"planning_mode must be one of {PLANNING_MODES}")

    def image_allowed(self, image: str) -> bool:
        """An image must match one of the allowed glob patterns (fnmatch, case-sensitive)."""
        return any(fnmatchcase(image, pattern) for pattern in self.allowed_images)

    def image_problem(self, image: str) -> str | None:
        if self.image_allowed(image):
            return None
        allowed = ", ".join(self.allowed_images) or "none"
        return f"image {image!r} is not allowed by the repository policy (allowed: {allowed})"
