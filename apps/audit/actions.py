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
            target=str(target)[:200],
            details=details,
        )
    )


def actor_name(user: Any) -> str:
    """The audit name of a Django user (or 'system' for none)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous" if user is not None else "system"
    return f"user:{user.get_username()}"
