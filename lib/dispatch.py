"""Sending Celery tasks without letting a broker outage fail the caller.

Every task Delta CI sends after a commit (planning, log finalisation, GitHub reports)
describes work whose truth is already in the database, and a reconciler finds and sends
it again when it was lost. So a send that fails (Redis down, a network error) is logged
and counted (`deltaci_task_dispatch_failures_total`), never raised: the request that
committed the change still answers success, and a client never retries (and duplicates)
something that happened.
"""

import logging
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError
from prometheus_client import Counter

log = logging.getLogger(__name__)
FAILURES = Counter(
    "deltaci_task_dispatch_failures",
    "Celery tasks that could not be sent (broker down); a reconciler sends them again.",
    ["task"],
)


def dispatch(task: Any, *args: Any) -> bool:
    """`task.delay(*args)`; False (logged and counted) when it could not be sent."""
    try:
        task.delay(*args)
    except Exception as exc:  # any broker or transport error; eager tasks' errors too
        FAILURES.labels(task=task.name).inc()
        log.warning(
            "could not send task %s; the reconciler sends it again",
            task.name,
            exc_info=not isinstance(exc, OperationalError | OSError),  # a bug: its traceback
            extra={"task": task.name, "task_args": list(args), "error": repr(exc)[:300]},
        )
        return False
    return True


def dispatch_on_commit(task: Any, *args: Any) -> None:
    """dispatch() once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: dispatch(task, *args))
