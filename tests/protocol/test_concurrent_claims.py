"""On PostgreSQL, concurrent claims never share an attempt and limits hold exactly:
8 threads x 250 lease requests against 1,000 queued attempts lease every attempt once."""

import threading
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from apps.runners import dispatch
from apps.runners.models import Lease
from apps.runs.choices import AttemptState, JobState, RunState
from apps.runs.models import Job, JobAttempt, Run
from tests.conftest import SHA, job_spec

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def queue(repo, runs: int, jobs_per_run: int) -> None:
    """Queued attempts in bulk (the setup, not the subject: no planner, no events)."""
    for r in range(runs):
        run = Run.objects.create(
            repository=repo,
            trigger="manual",
            event_key=f"bulk:{r}",
            ref="refs/heads/main",
            commit_sha=SHA,
            state=RunState.QUEUED,
        )
        jobs = Job.objects.bulk_create(
            Job(run=run, name=f"j{i}", position=i, spec=job_spec(f"j{i}"), state=JobState.QUEUED)
            for i in range(jobs_per_run)
        )
        JobAttempt.objects.bulk_create(
            JobAttempt(
                job=job,
                run=run,
                attempt_number=1,
                state=AttemptState.QUEUED,
                run_created_at=run.created_at,
                queued_at=timezone.now(),
            )
            for job in jobs
        )


def hammer(runners, requests_each: int) -> tuple[list[int], list[BaseException]]:
    granted: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(runners))

    def work(runner) -> None:
        try:
            start.wait()
            for _ in range(requests_each):
                g = dispatch.claim(runner)
                if g is not None:
                    with lock:
                        granted.append(g.lease.attempt_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return granted, errors


def test_eight_threads_lease_a_thousand_attempts_exactly_once(repo, runner_factory, settings):
    settings.DELTACI_MAX_CONCURRENT_JOBS = 10_000
    settings.DELTACI_MAX_CONCURRENT_LEASES = 1000  # reached exactly at the end
    queue(repo, runs=10, jobs_per_run=100)
    runners = [runner_factory(f"r{i}") for i in range(8)]
    granted, errors = hammer(runners, 250)
    assert errors == []
    assert len(granted) == 1000 and len(set(granted)) == 1000
    assert Lease.objects.count() == 1000
    assert Counter(JobAttempt.objects.values_list("state", flat=True)) == {"LEASED": 1000}
    assert Lease.objects.values("attempt").distinct().count() == 1000
    assert set(Run.objects.values_list("state", flat=True)) == {"RUNNING"}


def test_the_global_lease_limit_holds_under_concurrency(repo, runner_factory, settings):
    settings.DELTACI_MAX_CONCURRENT_JOBS = 10_000
    settings.DELTACI_MAX_CONCURRENT_LEASES = 37
    queue(repo, runs=2, jobs_per_run=50)
    granted, errors = hammer([runner_factory(f"r{i}") for i in range(8)], 10)
    assert errors == [] and len(granted) == 37 == Lease.objects.count()


def test_the_repository_limit_holds_under_concurrency(repo, runner_factory, settings):
    settings.DELTACI_MAX_CONCURRENT_JOBS = 23
    queue(repo, runs=2, jobs_per_run=50)
    granted, errors = hammer([runner_factory(f"r{i}") for i in range(8)], 10)
    assert errors == [] and len(granted) == 23 == Lease.objects.count()
