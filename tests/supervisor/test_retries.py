"""Retry eligibility (states.md): infrastructure failures spend the policy's infra budget,
tooling and flaky ones the job's `retries`, user failures never retry; a job that fails
and then passes marks the failed attempt flaky."""

import pytest

from apps.artifacts.models import LogChunk
from apps.runs.models import Job, JobAttempt, Run
from tests.conftest import job_spec


def fail(proto, exit_code: int, log: bytes = b"") -> dict:
    g = proto.start()
    if log:
        assert proto.log(g["lease_id"], 0, log).status_code == 200
    assert proto.complete(g["lease_id"], "FAILED", exit_code).status_code == 200
    return g


def rows():
    return list(
        JobAttempt.objects.order_by("attempt_number").values_list(
            "attempt_number", "state", "failure_class", "infra_retry"
        )
    )


def test_a_user_failure_is_never_retried(make_run, proto):
    run = make_run([job_spec("unit:test", retries=3)])
    fail(proto, 1, b"FAILED tests/test_x.py::test_y - assert 1 == 2\n")
    assert rows() == [(1, "FAILED", "user", False)]
    assert Job.objects.get().state == "FAILED"
    assert Run.objects.get(pk=run.pk).state == "FAILED"


def test_a_tooling_failure_spends_the_jobs_retries(make_run, proto):
    run = make_run([job_spec("build", retries=1)])
    fail(proto, 127, b"sh: 1: pytest: not found\n")
    assert rows() == [(1, "FAILED", "tooling", False), (2, "QUEUED", "", False)]
    fail(proto, 127)
    assert [r[1] for r in rows()] == ["FAILED", "FAILED"]
    assert Job.objects.get().state == "FAILED" and Run.objects.get(pk=run.pk).state == "FAILED"


def test_no_job_retries_by_default(make_run, proto):
    make_run([job_spec("build")])
    fail(proto, 126)
    assert rows() == [(1, "FAILED", "tooling", False)]


def test_an_infrastructure_failure_spends_the_infra_budget_not_the_retries(
    make_run, proto, settings
):
    settings.DELTACI_INFRA_RETRY_BUDGET = 1
    make_run([job_spec("build", retries=0)])
    fail(proto, 1, b"write error: No space left on device\n")
    assert rows() == [(1, "FAILED", "infrastructure", False), (2, "QUEUED", "", True)]
    fail(proto, 137)
    assert [r[1] for r in rows()] == ["FAILED", "FAILED"]
    assert Job.objects.get().state == "FAILED"


def test_a_failure_then_a_pass_marks_the_failure_flaky(make_run, proto):
    run = make_run([job_spec("build", retries=2)])
    fail(proto, 1, b"Permission denied\n")
    g = proto.start()
    assert g["attempt_number"] == 2
    assert proto.complete(g["lease_id"]).status_code == 200
    assert rows() == [(1, "FAILED", "flaky", False), (2, "SUCCEEDED", "", False)]
    assert Job.objects.get().state == "SUCCEEDED" and Run.objects.get(pk=run.pk).state == "SUCCESS"


def test_a_runner_reported_timeout_ends_the_job_timed_out(make_run, proto, settings):
    settings.DELTACI_INFRA_RETRY_BUDGET = 0
    run = make_run([job_spec("build")])
    g = proto.start()
    assert proto.complete(g["lease_id"], "TIMED_OUT", None).status_code == 200
    assert rows() == [(1, "TIMED_OUT", "infrastructure", False)]
    assert Job.objects.get().state == "TIMED_OUT" and Run.objects.get(pk=run.pk).state == "FAILED"


def test_classification_reads_only_the_logs_tail(make_run, proto):
    make_run([job_spec("unit:test")])
    g = proto.start()
    proto.log(g["lease_id"], 0, b"No space left on device\n" + b"x" * (70 * 1024))
    proto.complete(g["lease_id"], "FAILED", 1)
    assert JobAttempt.objects.get(attempt_number=1).failure_class == "user"
    assert LogChunk.objects.exists()


@pytest.mark.parametrize("budget", [0, 1, 2])
def test_the_number_of_infra_retries_is_the_budget(make_run, proto, settings, budget):
    settings.DELTACI_INFRA_RETRY_BUDGET = budget
    make_run([job_spec("build")])
    for _ in range(budget + 1):
        fail(proto, 137)
    assert JobAttempt.objects.count() == budget + 1
    assert Job.objects.get().state == "FAILED" and proto.lease().status_code == 204
