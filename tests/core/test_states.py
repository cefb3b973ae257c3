"""The state machines: every allowed transition, forbidden ones, terminal states, events,
and (on PostgreSQL) two threads racing one row."""

import threading

import pytest
from django.db import connection

from apps.runs import states
from apps.runs.choices import ATTEMPT_TERMINAL, JOB_TERMINAL, LEASE_ENDED, RUN_TERMINAL, RunState
from apps.runs.models import Run, StateEvent

TERMINAL = {
    "run": set(RUN_TERMINAL),
    "job": set(JOB_TERMINAL),
    "attempt": set(ATTEMPT_TERMINAL),
    "lease": set(LEASE_ENDED),
}


def test_it_never_leaves_a_terminal_state():
    for kind, machine in states.MACHINES.items():
        for frm, _to in machine.pairs():
            assert frm not in TERMINAL[kind], f"{kind}: {frm} is terminal but is a source"


def test_it_matches_the_contract_tables():
    pairs = set(states.RUN.pairs())
    for expected in [
        ("CREATED", "PLANNING"),
        ("PLANNING", "QUEUED"),
        ("PLANNING", "PLAN_FAILED"),
        ("PLAN_FAILED", "FAILED"),
        ("QUEUED", "RUNNING"),
        ("QUEUED", "SUCCESS"),
        ("RUNNING", "SUCCESS"),
        ("QUEUED", "FAILED"),
        ("RUNNING", "FAILED"),
        ("QUEUED", "CANCEL_REQUESTED"),
        ("RUNNING", "CANCEL_REQUESTED"),
        ("CANCEL_REQUESTED", "CANCELED"),
        ("QUEUED", "TIMEOUT"),
        ("RUNNING", "TIMEOUT"),
    ]:
        assert expected in pairs
    attempt = set(states.ATTEMPT.pairs())
    held = ["LEASED", "STARTING", "RUNNING", "UPLOADING"]
    for expected in [
        ("CREATED", "QUEUED"),
        ("QUEUED", "LEASED"),
        ("LEASED", "STARTING"),
        ("STARTING", "RUNNING"),
        ("RUNNING", "UPLOADING"),
        ("QUEUED", "CANCELED"),
        ("CANCEL_REQUESTED", "CANCELED"),
    ]:
        assert expected in attempt
    for frm in held:
        for to in ("SUCCEEDED", "FAILED", "TIMED_OUT", "STALE", "CANCEL_REQUESTED"):
            assert (frm, to) in attempt
    lease = set(states.LEASE.pairs())
    assert lease == {
        ("GRANTED", "ACTIVE"),
        ("GRANTED", "EXPIRED"),
        ("ACTIVE", "EXPIRED"),
        ("GRANTED", "REVOKED"),
        ("ACTIVE", "REVOKED"),
        ("ACTIVE", "COMPLETED"),
        ("ACTIVE", "CANCELED"),
    }


def _run(repo, state):
    run = Run.objects.create(
        repository=repo,
        trigger="manual",
        event_key=f"k{Run.objects.count()}",
        ref="refs/heads/main",
        commit_sha="a" * 40,
    )
    Run.objects.filter(pk=run.pk).update(state=state)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("frm,to", states.RUN.pairs())
def test_it_allows_every_run_transition_and_writes_an_event(repo, frm, to):
    run = _run(repo, frm)
    assert states.transition(states.RUN, run, to, why="test", actor="tester")
    run.refresh_from_db()
    assert run.state == to
    ev = StateEvent.objects.get(kind="run", object_id=run.pk)
    assert (ev.from_state, ev.to_state, ev.reason, ev.actor) == (frm, to, "test", "tester")


@pytest.mark.parametrize("to", [s for s in RunState.values])
def test_it_refuses_forbidden_run_transitions(repo, to):
    for frm in RunState.values:
        if states.RUN.allows(frm, to):
            continue
        run = _run(repo, frm)
        assert not states.transition(states.RUN, run, to, actor="system")
        run.refresh_from_db()
        assert run.state == frm
    assert not StateEvent.objects.filter(to_state=to, kind="run").exists()


def test_it_compares_with_the_database_not_the_stale_instance(repo):
    run = _run(repo, "QUEUED")
    stale_copy = Run.objects.get(pk=run.pk)
    assert states.transition(states.RUN, run, "RUNNING", actor="system")
    # The copy still says QUEUED; RUNNING -> SUCCESS is allowed from the real state.
    assert states.transition(states.RUN, stale_copy, "SUCCESS", actor="system")
    ev = StateEvent.objects.filter(kind="run", to_state="SUCCESS").get()
    assert ev.from_state == "RUNNING"
    # ...and a terminal row refuses everything, whatever the instance believes.
    stale_copy.state = "RUNNING"
    assert not states.transition(states.RUN, stale_copy, "FAILED", actor="system")


def test_it_stamps_timestamps(repo):
    run = _run(repo, "QUEUED")
    states.transition(states.RUN, run, "RUNNING", actor="system")
    run.refresh_from_db()
    assert run.started_at is not None


def test_only_from_narrows_the_sources(repo):
    run = _run(repo, "RUNNING")
    assert not states.transition(states.RUN, run, "FAILED", only_from=["QUEUED"], actor="system")
    assert states.transition(states.RUN, run, "FAILED", only_from=["RUNNING"], actor="system")


def test_extra_fields_are_written_in_the_same_update_and_converted(repo):
    run = _run(repo, "RUNNING")
    assert states.transition(
        states.RUN, run, "FAILED", reason="tests failed: ünïcode ✓", actor="system"
    )
    fresh = Run.objects.get(pk=run.pk)
    assert (fresh.state, fresh.reason) == ("FAILED", "tests failed: ünïcode ✓")
    assert fresh.finished_at == run.finished_at and fresh.finished_at.tzinfo is not None


def test_it_refuses_sql_expressions_and_changes_nothing(repo):
    from django.db.models import F

    run = _run(repo, "RUNNING")
    with pytest.raises(TypeError):
        states.transition(states.RUN, run, "FAILED", reason=F("ref"), actor="system")
    run.refresh_from_db()
    assert run.state == "RUNNING" and not StateEvent.objects.filter(object_id=run.pk).exists()


def test_a_deleted_row_is_refused_not_an_error(repo):
    run = _run(repo, "RUNNING")
    Run.objects.filter(pk=run.pk).delete()
    assert not states.transition(states.RUN, run, "FAILED", actor="system")
    run.state = "PLANNING"  # a stale belief in a state that is not a source either
    assert not states.transition(states.RUN, run, "FAILED", actor="system")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_two_racing_threads_win(repo):
    wins, errors = [], []
    for _round in range(20):
        run = _run(repo, "RUNNING")
        barrier = threading.Barrier(2)

        def race(target, run_id=run.pk, barrier=barrier):
            try:
                instance = Run.objects.get(pk=run_id)
                barrier.wait()
                wins.append(
                    (
                        run_id,
                        target,
                        states.transition(states.RUN, instance, target, actor="system"),
                    )
                )
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=race, args=(t,)) for t in ("SUCCESS", "FAILED")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [w for w in wins if w[0] == run.pk and w[2]]
        assert len(won) == 1, won
        run.refresh_from_db()
        assert run.state == won[0][1]
        assert StateEvent.objects.filter(kind="run", object_id=run.pk).count() == 1
    assert not errors
