"""A log line for every accepted state transition, written after its transaction commits
(a rolled-back transition never happened, so it is never logged). Operators follow one
job through `grep '"run_id": 42'` across web and worker logs."""

import logging
from typing import Any

from django.db import transaction

log = logging.getLogger("deltaci.state")
_ID_FIELD = {"job": "job_id", "attempt": "attempt_id", "lease": "lease_pk"}


def log_state_event(instance: Any) -> None:
    if not log.isEnabledFor(logging.INFO):  # the hot path pays nothing when not logging
        return
    fields = {
        "run_id": instance.run_id,
        "kind": instance.kind,
        "from_state": instance.from_state,
        "to_state": instance.to_state,
        "reason": instance.reason,
        "actor": instance.actor,
    }
    id_field = _ID_FIELD.get(instance.kind)
    if id_field:
        fields[id_field] = instance.object_id
    message = f"{instance.kind} {instance.object_id}: {instance.from_state} -> {instance.to_state}"
    transaction.on_commit(lambda: log.info(message, extra=fields), robust=True)
