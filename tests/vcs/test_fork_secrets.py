"""Fork pull requests never get secrets and only read caches — decided by the webhook's
head/base repositories, not configurable — while the same job from the repository
itself gets exactly the secrets it names. Every delivery or refusal is audited by
name only."""

import pytest

from apps.audit.models import AuditEvent
from apps.policies.secrets import set_secret
from apps.runs.actions import do_rerun_run
from apps.runs.choices import RunState
from apps.runs.models import Run
from tests.vcs.conftest import complete, deliver, derived, lease

SECRET_VALUE = "s3cr3t-value-never-in-audit"


def pr_payload(git_repo, fixture: str) -> bytes:
    return derived(
        fixture,
        pull_request__head__sha=git_repo.head,
        pull_request__base__sha=git_repo.base,
    )


@pytest.fixture
def planned(client, git_repo, webhook_secret, django_capture_on_commit_callbacks):
    set_secret(git_repo.model, "DEPLOY_KEY", SECRET_VALUE)
    set_secret(git_repo.model, "OTHER", "not named by the job")

    def post(fixture: str) -> Run:
        with django_capture_on_commit_callbacks(execute=True):
            resp = deliver(client, "pull_request", pr_payload(git_repo, fixture))
        assert resp.status_code == 201, resp.content
        run = Run.objects.get(pk=resp.json()["run_id"])
        assert run.state == RunState.QUEUED, (run.state, run.plan_error)
        return run

    return post


def test_it_gives_a_fork_run_no_secrets_and_read_only_caches(planned, runner):
    run = planned("pull_request.synchronize.fork.derived.json")
    assert run.is_fork is True
    assert run.jobs.get().spec["secrets"] == ["DEPLOY_KEY"]  # the job does name one
    granted = lease(runner)
    assert granted["secrets"] == {}
    caches = granted["job_spec"]["caches"]
    assert caches and all(c["read_only"] is True for c in caches)
    withheld = AuditEvent.objects.get(action="secret.withheld")
    assert withheld.details["names"] == ["DEPLOY_KEY"] and withheld.run_id == run.pk
    assert not AuditEvent.objects.filter(action="secret.read").exists()
    assert SECRET_VALUE not in str(list(AuditEvent.objects.values("details", "target")))


def test_it_gives_the_same_job_its_named_secret_when_not_from_a_fork(planned, runner):
    run = planned("pull_request.synchronize.json")
    assert run.is_fork is False
    granted = lease(runner)
    assert granted["secrets"] == {"DEPLOY_KEY": SECRET_VALUE}  # not OTHER
    assert all(c["read_only"] is False for c in granted["job_spec"]["caches"])
    read = AuditEvent.objects.get(action="secret.read")
    assert read.details["names"] == ["DEPLOY_KEY"] and read.actor == "runner:r1"
    assert SECRET_VALUE not in str(list(AuditEvent.objects.values("details", "target")))


def test_it_keeps_a_rerun_of_a_fork_run_a_fork_run(
    planned, runner, django_capture_on_commit_callbacks
):
    run = planned("pull_request.synchronize.fork.derived.json")
    with django_capture_on_commit_callbacks(execute=True):
        complete(runner, lease(runner), "FAILED", exit_code=1)
        rerun, _ = do_rerun_run(Run.objects.get(pk=run.pk), actor="user:someone")
    rerun.refresh_from_db()
    assert rerun.is_fork is True and rerun.state == RunState.QUEUED
    assert lease(runner)["secrets"] == {}
