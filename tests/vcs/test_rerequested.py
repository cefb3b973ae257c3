"""Re-run pressed on GitHub: `check_suite.rerequested` reruns the newest run of the
commit; `check_run.rerequested` on one of our check runs reruns that run (only what
failed, if it failed). Redeliveries make no second rerun; foreign check runs, unknown
commits and runs still going are acknowledged and ignored; malformed payloads are 400."""

import pytest

from apps.runs.choices import RunState
from apps.runs.models import Run
from tests.vcs.conftest import deliver, derived

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # check_suite.rerequested.json's head


@pytest.fixture
def finished(make_run, gh_repo):
    """A run of `sha` in the GitHub repository, ended in `state`, its job failed."""

    def make(state: str = RunState.FAILED, sha: str = SHA) -> Run:
        run = make_run(repository=gh_repo, commit_sha=sha, trigger="push")
        run.jobs.update(state="FAILED")
        Run.objects.filter(pk=run.pk).update(state=state)
        run.refresh_from_db()
        return run

    return make


def suite(client, delivery=None, **changes):
    body = derived("check_suite.rerequested.json", **changes)
    return deliver(client, "check_suite", body, delivery=delivery)


def check_run(client, external_id, head_sha=SHA, **changes):
    body = derived(
        "check_run.rerequested.json",
        repository__full_name="Codertocat/Hello-World",
        check_run__external_id=external_id,
        check_run__head_sha=head_sha,
        **changes,
    )
    return deliver(client, "check_run", body)


def test_a_rerequested_suite_reruns_everything_once_per_delivery(client, webhook_secret, finished):
    old = finished()
    resp = suite(client, delivery="d-1")
    assert resp.status_code == 201, resp.content
    new = Run.objects.get(pk=resp.json()["run_id"])
    assert (new.rerun_of, new.rerun_scope, new.trigger) == (old, "all", "rerun")
    assert new.commit_sha == SHA and new.started_by.startswith("github")
    again = suite(client, delivery="d-1")  # GitHub redelivers the same delivery
    assert again.status_code == 200 and again.json()["run_id"] == str(new.pk)
    assert Run.objects.count() == 2


def test_rerequesting_our_failed_check_run_reruns_the_failed_jobs(client, webhook_secret, finished):
    old = finished(RunState.FAILED)
    finished(RunState.SUCCESS)  # newer, same commit: the check run names the old one
    resp = check_run(client, f"delta-ci-run-{old.pk}")
    assert resp.status_code == 201, resp.content
    new = Run.objects.get(pk=resp.json()["run_id"])
    assert (new.rerun_of, new.rerun_scope) == (old, "failed")
    assert "failed jobs" in resp.json()["detail"]


def test_a_passed_check_run_rerequested_reruns_everything(client, webhook_secret, finished):
    old = finished(RunState.SUCCESS)
    resp = check_run(client, f"delta-ci-run-{old.pk}")
    assert resp.status_code == 201
    assert Run.objects.get(pk=resp.json()["run_id"]).rerun_scope == "all"


def test_a_run_still_going_is_not_rerun(client, webhook_secret, finished):
    finished(RunState.RUNNING)
    resp = suite(client)
    assert resp.status_code == 202 and "only a finished run" in resp.json()["detail"]
    assert Run.objects.count() == 1


@pytest.mark.parametrize(
    "external_id",
    ["", None, 7, "other-app-1", "delta-ci-run-0", "delta-ci-run-01", "delta-ci-run-" + "9" * 19],
)
def test_check_runs_that_are_not_ours_are_ignored(client, webhook_secret, finished, external_id):
    finished()
    resp = check_run(client, external_id)
    assert resp.status_code == 202 and resp.json()["outcome"] == "ignored"
    assert Run.objects.count() == 1


def test_a_run_of_another_commit_or_repository_is_not_rerun(
    client, webhook_secret, finished, gh_repo
):
    other_sha = finished(sha="b" * 40)
    resp = check_run(client, f"delta-ci-run-{other_sha.pk}")  # head_sha is SHA
    assert resp.status_code == 202 and "no run of" in resp.json()["detail"]
    resp = suite(client)  # no run of SHA at all
    assert resp.status_code == 202 and "no run of ec26c3e57ca3" in resp.json()["detail"]
    assert Run.objects.count() == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"check_suite__head_sha": "not-a-sha"},
        {"check_suite__head_sha": None},
        {"check_suite": "oops"},
        {"repository__full_name": "../../etc"},
    ],
)
def test_malformed_rerequests_are_refused(client, webhook_secret, gh_repo, changes):
    resp = suite(client, **changes)
    assert resp.status_code == 400
    assert Run.objects.count() == 0
