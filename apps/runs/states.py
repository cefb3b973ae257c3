"""The run, job, attempt and lease state machines (docs/states.md), in one place.

Every change of a `state` column goes through `transition()`: a compare-and-set UPDATE
(`… WHERE id = %s AND state = <the state we saw>`) restricted to the table's allowed
sources, plus one StateEvent row. Two workers racing on a row cannot both win; the loser
gets False and must not overwrite. Terminal states are never a source, so they never
change. Call inside the caller's transaction so the event commits with the change.

Both statements (apps/runs/statements.py) have fixed texts per (table, set of fields)
and run as prepared statements (lib/db.py): a runner's cycle makes about eight
transitions, and compiling them through the ORM cost several times more than running
them.
"""

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import connection, models, transaction
from django.utils import timezone

from apps.runs import statements
from apps.runs.choices import ATTEMPT_LEASED
from apps.runs.choices import AttemptState as A
from apps.runs.choices import JobState as J
from apps.runs.choices import LeaseState as L
from apps.runs.choices import RunState as R
from apps.runs.events import log_state_event
from apps.runs.models import StateEvent
from lib.db import fetch_prepared, insert


class Stateful(Protocol):
    """A row a machine moves: a Run, Job, JobAttempt or Lease."""

    @property
    def pk(self) -> Any: ...

    state: str


@dataclass(frozen=True)
class Machine:
    kind: str
    model_label: str
    # target state -> the states it may be entered from
    table: dict[str, tuple[str, ...]]
    # target state -> timestamp field set to now() when entered (unless given)
    stamps: dict[str, str]

    @property
    def model(self) -> type[models.Model]:
        from django.apps import apps

        return apps.get_model(self.model_label)

    def sources(self, to: str) -> tuple[str, ...]:
        return self.table.get(to, ())

    def allows(self, frm: str, to: str) -> bool:
        return frm in self.sources(to)

    def pairs(self) -> list[tuple[str, str]]:
        return [(frm, to) for to, frms in self.table.items() for frm in frms]


RUN = Machine(
    kind="run",
    model_label="runs.Run",
    table={
        R.PLANNING: (R.CREATED,),
        R.QUEUED: (R.PLANNING,),
        R.PLAN_FAILED: (R.PLANNING,),
        R.RUNNING: (R.QUEUED,),
        R.SUCCESS: (R.QUEUED, R.RUNNING),
        # PLAN_FAILED -> FAILED is finalization, keeping the planning error as reason.
        R.FAILED: (R.PLAN_FAILED, R.QUEUED, R.RUNNING),
        # CREATED/PLANNING are an extension of states.md: a run closed or superseded
        # before its plan exists must be cancellable too (see the note on issue 2).
        R.CANCEL_REQUESTED: (R.CREATED, R.PLANNING, R.QUEUED, R.RUNNING),
        R.CANCELED: (R.CANCEL_REQUESTED,),
        R.TIMEOUT: (R.QUEUED, R.RUNNING),
    },
    stamps={
        R.QUEUED: "planned_at",
        R.PLAN_FAILED: "planned_at",
        R.RUNNING: "started_at",
        R.CANCEL_REQUESTED: "cancel_requested_at",
        R.SUCCESS: "finished_at",
        R.FAILED: "finished_at",
        R.CANCELED: "finished_at",
        R.TIMEOUT: "finished_at",
    },
)

JOB = Machine(
    kind="job",
    model_label="runs.Job",
    table={
        J.QUEUED: (J.PENDING,),
        J.RUNNING: (J.QUEUED,),
        J.SUCCEEDED: (J.RUNNING,),
        J.FAILED: (J.RUNNING,),
        J.TIMED_OUT: (J.RUNNING,),
        J.CANCELED: (J.PENDING, J.QUEUED, J.RUNNING),
        J.SKIPPED: (J.PENDING,),
    },
    stamps={
        J.RUNNING: "started_at",
        J.SUCCEEDED: "finished_at",
        J.FAILED: "finished_at",
        J.TIMED_OUT: "finished_at",
        J.CANCELED: "finished_at",
        J.SKIPPED: "finished_at",
    },
)

ATTEMPT = Machine(
    kind="attempt",
    model_label="runs.JobAttempt",
    table={
        A.QUEUED: (A.CREATED,),
        A.LEASED: (A.QUEUED,),
        A.STARTING: (A.LEASED,),
        A.RUNNING: (A.STARTING,),
        A.UPLOADING: (A.RUNNING,),
        A.SUCCEEDED: ATTEMPT_LEASED,
        A.FAILED: ATTEMPT_LEASED,
        # A job timeout asks for cancellation first and is finalised as TIMED_OUT.
        A.TIMED_OUT: (*ATTEMPT_LEASED, A.CANCEL_REQUESTED),
        A.STALE: ATTEMPT_LEASED,
        A.CANCEL_REQUESTED: ATTEMPT_LEASED,
        A.CANCELED: (A.CREATED, A.QUEUED, A.CANCEL_REQUESTED),
    },
    stamps={
        A.QUEUED: "queued_at",
        A.LEASED: "leased_at",
        A.STARTING: "started_at",
        A.CANCEL_REQUESTED: "cancel_requested_at",
        A.SUCCEEDED: "finished_at",
        A.FAILED: "finished_at",
        A.TIMED_OUT: "finished_at",
        A.STALE: "finished_at",
        A.CANCELED: "finished_at",
    },
)

LEASE = Machine(
    kind="lease",
    model_label="runners.Lease",
    table={
        L.ACTIVE: (L.GRANTED,),
        L.EXPIRED: (L.GRANTED, L.ACTIVE),
        L.REVOKED: (L.GRANTED, L.ACTIVE),
        L.COMPLETED: (L.ACTIVE,),
        L.CANCELED: (L.ACTIVE,),
    },
    stamps={
        L.ACTIVE: "acked_at",
        L.EXPIRED: "ended_at",
        L.REVOKED: "ended_at",
        L.COMPLETED: "ended_at",
        L.CANCELED: "ended_at",
    },
)

MACHINES = {m.kind: m for m in (RUN, JOB, ATTEMPT, LEASE)}

# The one hook, for cross-app reporting: called with (run_id, new_state) after the
# transaction that moved a run commits. apps/vcs registers its GitHub reporting here
# (in AppConfig.ready()), because runs may not import vcs (.importlinter). Everything
# else a transition causes is an explicit call.
_run_listeners: list[Callable[[int, str], None]] = []


def on_run_transition(listener: Callable[[int, str], None]) -> Callable[[int, str], None]:
    if listener not in _run_listeners:
        _run_listeners.append(listener)
    return listener


def _notify_run_listeners(run_id: int, to: str) -> None:
    for listener in list(_run_listeners):
        transaction.on_commit(functools.partial(listener, run_id, to))


def _run_id(machine: Machine, obj: Any) -> int:
    if machine is RUN:
        return obj.pk
    if machine is LEASE:
        return obj.attempt.run_id
    return obj.run_id


def transition(
    machine: Machine,
    obj: Stateful,
    to: str,
    *,
    why: str = "",
    actor: str,
    only_from: Iterable[str] | None = None,
    **fields: Any,
) -> bool:
    """Move `obj` to `to` if its current state (in the database) allows it.

    `only_from` narrows the table's sources for this call. `why` goes into the event;
    `fields` are written in the same UPDATE. Returns False, changing nothing, when the
    row is in any other state — including when a concurrent writer moved it first. On
    success `obj` is updated in memory and a StateEvent is written.
    """
    allowed = set(machine.sources(to))
    if only_from is not None:
        allowed &= set(only_from)
    if not allowed:
        return False
    now = timezone.now()
    stamp = machine.stamps.get(to)
    if stamp and stamp not in fields:
        fields[stamp] = now
    model = machine.model
    if any(hasattr(v, "resolve_expression") for v in fields.values()):
        raise TypeError("transition() writes values, not SQL expressions")
    sql, select, columns = statements.transition(model, tuple(fields))
    params = _update_params(columns, fields)
    params["to"], params["pk"] = to, obj.pk
    current: str | None = obj.state  # None: the row is gone
    for _ in range(len(allowed) + 1):
        if current is None or current not in allowed:
            fresh = _state_in_db(select, obj.pk)
            if fresh is None or fresh == current or fresh not in allowed:
                return False
            current = fresh
        params["frm"] = current
        if fetch_prepared(sql, params):
            break
        current = _state_in_db(select, obj.pk)
    else:  # pragma: no cover - only under a pathological storm of concurrent writers
        return False
    _record(machine, obj, current, to, now, why, actor, fields)
    return True


def _record(
    machine: Machine, obj: Any, frm: str, to: str, now: Any, why: str, actor: str, fields: dict
) -> None:
    """The event for a change that has been made, and `obj` brought up to date."""
    event = insert(
        StateEvent(
            created_at=now,
            run_id=_run_id(machine, obj),
            kind=machine.kind,
            object_id=obj.pk,
            from_state=frm,
            to_state=to,
            reason=why[:500],
            actor=str(actor)[:200],
        )
    )
    log_state_event(event)
    obj.state = to
    for name, value in fields.items():
        setattr(obj, name, value)
    if machine is RUN:
        _notify_run_listeners(obj.pk, to)


def _state_in_db(select: str, pk: int) -> str | None:
    rows = fetch_prepared(select, {"pk": pk})
    return rows[0][0] if rows else None


def _update_params(columns: list, fields: dict) -> dict[str, Any]:
    params = {}
    for i, (field, value) in enumerate(zip(columns, fields.values(), strict=True)):
        if field.remote_field is not None and hasattr(value, "prepare_database_save"):
            value = value.prepare_database_save(field)
        params[f"f{i}"] = field.get_db_prep_save(value, connection)
    return params
