"""Every hand-written SQL statement of the run state machines and the engine, in one
place: the compare-and-set transition and its re-read (states.py), a run's state and
its open job states (engine.py). Names come from the models' metadata (lib/sql.py),
states are parameters, and each text is fixed so it runs as a prepared statement; the
start-up check (apps/runners/checks.py) has PostgreSQL plan every one of `samples()`."""

import functools
from collections.abc import Iterator
from typing import Any

from django.db import models
from django.utils import timezone

from apps.runs.choices import JOB_TERMINAL, RunState
from apps.runs.models import Job, JobAttempt, Run
from lib.sql import col, in_list, table


@functools.cache
def transition(model: type[models.Model], names: tuple[str, ...]) -> tuple[str, str, list]:
    """The compare-and-set UPDATE of `model`'s state that also writes the fields `names`
    (%(f0)s, …), and the re-read of the state: fixed texts, planned once per connection."""
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    state, pk = col(model, "state"), f'"{meta.pk.column}"'
    sets = "".join(f", {col(model, f.name)} = %(f{i})s" for i, f in enumerate(fields))
    update = (
        f"UPDATE {table(model)} SET {state} = %(to)s{sets} "  # noqa: S608 - names from the model
        f"WHERE {pk} = %(pk)s AND {state} = %(frm)s RETURNING {pk}"
    )
    select = f"SELECT {state} FROM {table(model)} WHERE {pk} = %(pk)s"  # noqa: S608
    return update, select, fields


RUN_STATE = f"SELECT {col(Run, 'state')} FROM {table(Run)} WHERE {col(Run, 'id')} = %(run)s"  # noqa: S608
_TERMINAL_IN, _TERMINAL = in_list("terminal", JOB_TERMINAL)
OPEN_JOB_STATES = (
    f"SELECT DISTINCT {col(Job, 'state')} FROM {table(Job)} "  # noqa: S608
    f"WHERE {col(Job, 'run')} = %(run)s AND {col(Job, 'state')} NOT IN {_TERMINAL_IN}"
)


def open_job_states_params(run_pk: int) -> dict[str, Any]:
    return {"run": run_pk, **_TERMINAL}


def samples() -> Iterator[tuple[str, str, dict]]:
    """Every statement text this module makes (transitions: the field sets in use, with
    the run's timestamps as the example), with parameters of the right types."""
    now = timezone.now()
    for model in (Run, Job, JobAttempt):
        update, select, _ = transition(model, ("finished_at",))
        params = {"to": RunState.FAILED, "frm": RunState.RUNNING, "pk": 0, "f0": now}
        yield f"transition({model.__name__})", update, params
        yield f"state({model.__name__})", select, {"pk": 0}
    yield "run_state", RUN_STATE, {"run": 0}
    yield "open_job_states", OPEN_JOB_STATES, open_job_states_params(0)
