"""Property-based tests (hypothesis) of the four state machines on real rows: random
sequences of requested transitions, through stale copies of the row and with random
`only_from` narrowing, never produce a change the table does not allow, never change a
terminal state, and leave exactly one event per change that happened."""

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.runners.models import Lease
from apps.runs import states
from apps.runs.choices import (
    ATTEMPT_TERMINAL,
    JOB_TERMINAL,
    LEASE_ENDED,
    RUN_TERMINAL,
    AttemptState,
    JobState,
    LeaseState,
    RunState,
)
from apps.runs.models import Job, JobAttempt, Run, StateEvent

TERMINAL = {
    "run": set(RUN_TERMINAL),
    "job": set(JOB_TERMINAL),
    "attempt": set(ATTEMPT_TERMINAL),
    "lease": set(LEASE_ENDED),
}
ALL_STATES = {
    "run": list(RunState.values),
    "job": list(JobState.values),
    "attempt": list(AttemptState.values),
    "lease": list(LeaseState.values),
}
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def fresh_row(kind: str, repo, runner):
    """A new row of `kind` in its initial state (with the rows it hangs from)."""
    now = timezone.now()
    run = Run.objects.create(
        repository=repo,
        trigger="manual",
        event_key=f"prop:{secrets.token_hex(8)}",
        ref="refs/heads/main",
        commit_sha="a" * 40,
    )
    if kind == "run":
        return run
    job = Job.objects.create(run=run, name="j", spec={})
    if kind == "job":
        return job
    attempt = JobAttempt.objects.create(job=job, run=run, attempt_number=1)
    if kind == "attempt":
        return attempt
    digest = secrets.token_hex(32)
    return Lease.objects.create(
        attempt=attempt,
        runner=runner,
        lease_hash=digest,
        lease_prefix=digest[:12],
        granted_at=now,
        ack_deadline=now + timedelta(seconds=30),
        expires_at=now + timedelta(seconds=120),
    )


def step_strategy(kind: str):
    """(target state, which in-memory copy asks, optional only_from narrowing)."""
    names = ALL_STATES[kind]
    only = st.none() | st.lists(st.sampled_from(names), unique=True, max_size=4)
    return st.lists(st.tuples(st.sampled_from(names), st.integers(0, 1), only), max_size=12)


@pytest.mark.parametrize("kind", sorted(states.MACHINES))
def test_random_transition_sequences_respect_the_tables(db, repo, runner, kind):
    machine = states.MACHINES[kind]

    @PROPERTY
    @given(steps=step_strategy(kind))
    def check(steps):
        row = fresh_row(kind, repo, runner)
        copies = [row, type(row).objects.get(pk=row.pk)]  # the second one goes stale
        truth = row.state
        changes = []
        for to, who, only in steps:
            obj = copies[who]
            moved = states.transition(
                machine, obj, to, why="property", actor="test", only_from=only
            )
            allowed = set(machine.sources(to))
            if only is not None:
                allowed &= set(only)
            assert moved == (truth in allowed), (truth, to, only)
            in_db = type(row).objects.values_list("state", flat=True).get(pk=row.pk)
            if moved:
                assert truth not in TERMINAL[kind]
                changes.append((truth, to))
                truth = to
            assert in_db == truth
        events = StateEvent.objects.filter(kind=kind, object_id=row.pk).order_by("id")
        assert list(events.values_list("from_state", "to_state")) == changes
        assert all(machine.allows(frm, to) for frm, to in changes)

    check()


@PROPERTY
@given(to=st.sampled_from(ALL_STATES["run"]))
def test_a_terminal_run_never_changes(db, repo, runner, to):
    for end in RUN_TERMINAL:
        row = fresh_row("run", repo, runner)
        Run.objects.filter(pk=row.pk).update(state=end)
        row.state = end
        assert not states.transition(states.RUN, row, to, actor="test")
        assert Run.objects.get(pk=row.pk).state == end
