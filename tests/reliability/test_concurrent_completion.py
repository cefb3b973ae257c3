"""On PostgreSQL, two jobs that end at the same moment each see the other still running
in their own transaction; the run must still move on at once (the last commit's
re-check), not wait for the supervisor's next advance_runs."""

import threading
from typing import Any

import pytest

from apps.runners import leasing
from apps.runs.models import Job
from tests.conftest import job_spec
from tests.protocol.proto import Proto
from tests.supervisor.test_expiry_races import Worker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_jobs_ending_together_release_their_dependent_and_finish_the_run(
    make_run, runner_factory, monkeypatch
):
    run = make_run([job_spec("a"), job_spec("b"), job_spec("c", needs=["a", "b"])])
    first, second = Proto(runner_factory("r1")), Proto(runner_factory("r2"))
    a, b = first.start(), second.start()

    # The first Complete has resolved its attempt but not committed when the second runs.
    resolved, release = threading.Event(), threading.Event()
    real, calls = leasing.engine.resolve_attempt, []

    def holding(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            resolved.set()
            assert release.wait(20), "never released"

    monkeypatch.setattr(leasing.engine, "resolve_attempt", holding)
    held = Worker(lambda: first.complete(a["lease_id"]))
    held.start()
    assert resolved.wait(20)
    other = Worker(lambda: second.complete(b["lease_id"]))
    other.start()
    assert other.outcome().status_code == 200  # committed while `a` is still uncommitted
    release.set()
    assert held.outcome().status_code == 200

    states = dict(Job.objects.filter(run=run).values_list("name", "state"))
    assert states == {"a": "SUCCEEDED", "b": "SUCCEEDED", "c": "QUEUED"}
    c = first.start()
    assert first.complete(c["lease_id"]).status_code == 200
    run.refresh_from_db()
    assert run.state == "SUCCESS"
