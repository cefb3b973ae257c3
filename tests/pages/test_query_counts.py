"""Query bounds (STYLE habit 10): the run page of a 300-job, 900-attempt run and a page of
the runs list take a fixed number of queries, whatever the number of rows."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.artifacts.models import Artifact, TestReport, TestResult, test_key
from apps.runners.models import Lease
from apps.runs.models import Job, JobAttempt, Run
from tests.conftest import SHA

RUN_PAGE_MAX = 20
LIST_PAGE_MAX = 12


def big_run(repo, runner, jobs: int, attempts_per_job: int = 3) -> Run:
    now = timezone.now()
    run = Run.objects.create(
        repository=repo,
        trigger="push",
        event_key=f"big{jobs}",
        ref="refs/heads/main",
        commit_sha=SHA,
        state="FAILED",
        plan={"explain": "all of it", "source": "discovery", "changed_paths": ["a"] * 500},
        started_at=now - timedelta(minutes=5),
        finished_at=now,
    )
    Job.objects.bulk_create(
        Job(
            run=run,
            name=f"job-{i}",
            position=i,
            needs=[f"job-{i - 1}"] if i % 10 else [],
            spec={"name": f"job-{i}"},
            state="FAILED" if i % 7 == 0 else "SUCCEEDED",
            started_at=now - timedelta(minutes=4),
            finished_at=now,
        )
        for i in range(jobs)
    )
    job_rows = list(Job.objects.filter(run=run))
    JobAttempt.objects.bulk_create(
        JobAttempt(
            job=j,
            run=run,
            attempt_number=n,
            state="SUCCEEDED" if n == attempts_per_job else "FAILED",
            exit_code=0 if n == attempts_per_job else 1,
            failure_class="" if n == attempts_per_job else "flaky",
            started_at=now - timedelta(minutes=3),
            finished_at=now,
        )
        for j in job_rows
        for n in range(1, attempts_per_job + 1)
    )
    attempts = list(JobAttempt.objects.filter(run=run))
    Lease.objects.bulk_create(
        Lease(
            attempt=a,
            runner=runner,
            lease_hash=f"{a.pk:064d}",
            lease_prefix=f"{a.pk:012d}",
            state="COMPLETED",
            granted_at=now,
            ack_deadline=now,
            expires_at=now,
        )
        for a in attempts
    )
    Artifact.objects.bulk_create(
        Artifact(attempt=a, name=name, artifact_type=kind, key=f"k/{a.pk}/{name}", recorded=True)
        for a in attempts
        for name, kind in (("log.txt", "log"), ("junit.xml", "junit"), ("cov.xml", "coverage"))
    )
    TestReport.objects.bulk_create(
        TestReport(artifact=art, attempt_id=art.attempt_id, total=2)
        for art in Artifact.objects.filter(attempt__run=run, artifact_type="junit")
    )
    by_attempt = {a.pk: a for a in attempts}
    names = {j.pk: j.name for j in job_rows}
    TestResult.objects.bulk_create(
        TestResult(
            report=rep,
            attempt_id=rep.attempt_id,
            job_id=by_attempt[rep.attempt_id].job_id,
            run=run,
            classname="t",
            name=name,
            status="passed"
            if name == "ok" or by_attempt[rep.attempt_id].attempt_number == attempts_per_job
            else "failed",
            message="boom",
            duration=0.5,
            test_key=test_key(repo.pk, names[by_attempt[rep.attempt_id].job_id], "", "t", name),
        )
        for rep in TestReport.objects.filter(attempt__run=run)
        for name in ("ok", "wobbly")
    )
    return run


def count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
        assert r.status_code == 200
    return len(ctx.captured_queries)


def test_it_renders_a_300_job_run_in_bounded_queries(repo, runner, clients):
    small = big_run(repo, runner, jobs=3)
    big = big_run(repo, runner, jobs=300)
    assert JobAttempt.objects.filter(run=big).count() == 900
    for who in ("member", "operator"):
        c = clients[who]
        with CaptureQueriesContext(connection) as ctx:
            html = c.get(f"/runs/{big.pk}").content.decode()
        assert len(ctx.captured_queries) <= RUN_PAGE_MAX, who
        assert "job-299" in html and "300 flaky" in html and html.count('class="job"') == 300
        assert count(c, f"/runs/{small.pk}") == len(ctx.captured_queries), who


def test_it_lists_runs_in_bounded_queries(repo, clients, django_assert_max_num_queries):
    for i in range(60):
        Run.objects.create(
            repository=repo,
            trigger="push",
            event_key=f"r{i}",
            ref="refs/heads/main",
            commit_sha=SHA,
            state="SUCCESS",
        )
    c = clients["member"]
    with django_assert_max_num_queries(LIST_PAGE_MAX):
        c.get("/runs")
    assert count(c, "/runs") == count(c, "/runs?page=2") == count(c, "/runs?state=SUCCESS")
    assert count(c, "/") <= LIST_PAGE_MAX


LIVE_304_MAX = 6
LOG_PAGE_MAX = 10


def test_it_polls_the_live_parts_in_bounded_queries(repo, runner, clients):
    big = big_run(repo, runner, jobs=300)
    c = clients["member"]
    with CaptureQueriesContext(connection) as ctx:
        r = c.get(f"/runs/{big.pk}/live")
    assert r.status_code == 200 and len(ctx.captured_queries) <= RUN_PAGE_MAX + 1
    with CaptureQueriesContext(connection) as ctx:
        assert c.get(f"/runs/{big.pk}/live", HTTP_IF_NONE_MATCH=r["ETag"]).status_code == 304
    assert len(ctx.captured_queries) <= LIVE_304_MAX
    assert count(c, "/runs/live") <= LIST_PAGE_MAX


def test_it_serves_log_pages_in_bounded_queries(repo, runner, clients):
    big = big_run(repo, runner, jobs=3)
    attempt = JobAttempt.objects.filter(run=big).first()
    c = clients["member"]
    base = f"/runs/{big.pk}/attempts/{attempt.pk}/log"
    for url in (base, f"{base}?q=x&line=5", f"{base}/lines?from=1&to=9", f"{base}/tail?offset=0"):
        assert count(c, url) <= LOG_PAGE_MAX, url
