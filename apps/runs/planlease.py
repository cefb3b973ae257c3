"""The planning lease: a run in PLANNING is held by one planning task, which renews its
lease from a background thread while it works. When the worker dies (SIGKILL, OOM, a
lost node) the lease runs out and the supervisor dispatches planning again with a fresh
token, at most MAX_PLANNING_ATTEMPTS times, instead of leaving the run PLANNING until
the planning timeout fails it.

Planning is safe to run twice: the plan is stored in one transaction that first
checks, under a row lock, that the run is still PLANNING; a second planner finds it
QUEUED and stores nothing. A task delivered again (the broker's visibility timeout, a
reconciler) without the current token plans nothing.
"""

import logging
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.runs import states
from apps.runs.choices import RunState
from apps.runs.models import Run

log = logging.getLogger(__name__)
MAX_PLANNING_ATTEMPTS = 3


def lease_length() -> timedelta:
    return timedelta(seconds=settings.DELTACI_PLANNING_LEASE_SECONDS)


def new_token() -> str:
    return secrets.token_hex(16)


def claim(run: Run, token: str = "") -> str | None:
    """Start planning `run`: CREATED -> PLANNING, or take over a PLANNING run the
    supervisor handed to `token`. Returns this planner's own token (for renewals), or
    None when the run is not ours to plan."""
    mine = new_token()
    until = timezone.now() + lease_length()
    with transaction.atomic():
        if states.transition(
            states.RUN,
            run,
            RunState.PLANNING,
            why="planning started",
            actor="system",
            planning_token=mine,
            planning_lease_until=until,
            planning_attempts=1,
        ):
            return mine
    if not token:
        return None
    handed = Run.objects.filter(pk=run.pk, state=RunState.PLANNING, planning_token=token)
    taken = handed.update(
        planning_token=mine,
        planning_lease_until=until,
        planning_attempts=F("planning_attempts") + 1,
    )
    return mine if taken else None


def renew(run_id: int, token: str) -> bool:
    """Extend the lease while `token` still holds it."""
    until = timezone.now() + lease_length()
    return bool(
        Run.objects.filter(pk=run_id, state=RunState.PLANNING, planning_token=token).update(
            planning_lease_until=until
        )
    )


@contextmanager
def held(run_id: int, token: str) -> Iterator[None]:
    """Renew the lease every quarter of its length while the body runs (git fetches
    and planning big repositories take longer than a lease)."""
    stop = threading.Event()
    every = lease_length().total_seconds() / 4

    def beat() -> None:
        try:
            while not stop.wait(every):
                try:
                    renew(run_id, token)
                except DatabaseError:
                    log.warning("could not renew the planning lease", extra={"run_id": run_id})
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"planning-lease-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def lost(now: datetime, limit: int) -> list[tuple[int, str, int]]:
    """(run id, token, attempts) of PLANNING runs whose lease ran out."""
    return list(
        Run.objects.filter(state=RunState.PLANNING, planning_lease_until__lte=now)
        .order_by("planning_lease_until")
        .values_list("pk", "planning_token", "planning_attempts")[:limit]
    )


def hand_over(run_id: int, token: str, now: datetime) -> str | None:
    """Give a lost run's planning to a new token (call inside a transaction, then
    dispatch plan_run with it). The new lease gives that task time to start."""
    fresh = new_token()
    moved = Run.objects.filter(
        pk=run_id, state=RunState.PLANNING, planning_token=token, planning_lease_until__lte=now
    ).update(planning_token=fresh, planning_lease_until=now + lease_length())
    return fresh if moved else None
