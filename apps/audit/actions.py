"""Writing audit events. Called from other apps' actions inside their transaction, so an
audited change and its audit row commit (or roll back) together."""

from typing import Any

from apps.audit.models import AuditEvent
from lib.db import insert


def record(
    action: str,
    *,
    actor: str = "system",
    repository: Any = None,
    run: Any = None,
    target: str = "",
    **details: Any,
) -> AuditEvent:
    if run is not None and repository is None:
        repository = getattr(run, "repository", None)
    # One prepared INSERT: lease grants write an event each, on the hot path.
    return insert(
        AuditEvent(
            action=action,
            actor=str(actor)[:200],
            repository=repository,
            run=run,
            subject=subject_label(repository, run),
            target=str(target)[:200],
            details=details,
        )
    )


def subject_label(repository: Any, run: Any) -> str:
    """What the row is about, readable after the run or repository is deleted."""
    name = getattr(repository, "name", "") if repository is not None else ""
    if run is not None:
        return f"run {run.pk} of {name}"[:200] if name else f"run {run.pk}"
    return f"repository {name}"[:200] if name else ""


def actor_name(user: Any) -> str:
    """The audit name of a Django user (or 'system' for none)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous" if user is not None else "system"
    return f"user:{user.get_username()}"
