"""A manual, API or rerun run names a commit and a ref; only when the commit is reachable
from that branch or tag (checked in the mirror by the planning task) may its jobs see
secrets and write caches. Otherwise — a fork's pull-request head run as `ref=main`, a
`refs/pull/N/head` ref — the run is untrusted exactly like a fork run, and says why."""

import io

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.policies.secrets import set_secret
from apps.runs.actions import do_rerun_run
from apps.runs.choices import RunState
from apps.runs.models import Run
from apps.runs.planning import do_plan_run
from tests.vcs.conftest import complete, lease

SECRET_VALUE = "s3cr3t-value-never-for-forks"


@pytest.fixture
def repo_with_fork_pr(git_repo):
    """master: base, head. A fork's commit, reachable only from refs/pull/7/head."""
    git_repo.git("checkout", "--quiet", "-b", "fork-work")
    git_repo.fork = git_repo.commit({"app.py": "steal(secrets)\n"}, "fork")
    git_repo.git("checkout", "--quiet", "master")
    git_repo.git("update-ref", "refs/pull/7/head", git_repo.fork)
    git_repo.git("branch", "--quiet", "-D", "fork-work")
    set_secret(git_repo.model, "DEPLOY_KEY", SECRET_VALUE)
    return git_repo


@pytest.fixture
def api_user(db, repo_with_fork_pr):
    user = User.objects.create_user("mia", password="x")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["trigger_run", "rerun_run"]))
    repo_with_fork_pr.model.members.add(user)
    client = APIClient()
    client.force_authenticate(user)
    return client


def api_run(client, ref: str, sha: str) -> Run:
    resp = client.post(
        "/api/v1/runs", {"repo": "hello", "ref": ref, "commit_sha": sha}, format="json"
    )
    assert resp.status_code == 201, resp.content
    assert resp.json()["is_fork"] is False  # nothing is known before planning
    run = Run.objects.get(pk=resp.json()["id"])
    do_plan_run(run.pk)  # on_commit does not fire inside the test's transaction
    run.refresh_from_db()
    assert run.state == RunState.QUEUED, run.plan_error
    return run


def assert_untrusted(run: Run, runner, why: str) -> None:
    assert run.is_fork is True and why in run.untrusted_reason
    granted = lease(runner)
    assert granted["secrets"] == {}
    caches = granted["job_spec"]["caches"]
    assert caches and all(c["read_only"] for c in caches)
    assert AuditEvent.objects.filter(action="run.untrusted", run_id=run.pk).exists()
    assert AuditEvent.objects.filter(action="secret.withheld", run_id=run.pk).exists()
    complete(runner, granted)


def test_a_fork_commit_run_as_main_gets_no_secrets(api_user, repo_with_fork_pr, runner):
    run = api_run(api_user, "master", repo_with_fork_pr.fork)
    assert_untrusted(run, runner, "is not reachable from refs/heads/master")
    page = Client()
    page.force_login(User.objects.get(username="mia"))
    html = page.get(f"/runs/{run.pk}").content.decode()
    assert "untrusted: no secrets, read-only caches" in html
    assert "is not reachable from refs/heads/master" in html
    detail = api_user.get(f"/api/v1/runs/{run.pk}").json()["run"]
    assert detail["is_fork"] is True and "not reachable" in detail["untrusted_reason"]


def test_a_pull_request_ref_is_never_trusted(api_user, repo_with_fork_pr, runner):
    run = api_run(api_user, "refs/pull/7/head", repo_with_fork_pr.fork)
    assert_untrusted(run, runner, "is not a branch or tag")


def test_an_older_commit_of_the_branch_is_trusted(api_user, repo_with_fork_pr, runner):
    run = api_run(api_user, "master", repo_with_fork_pr.base)
    assert run.is_fork is False and run.untrusted_reason == ""
    assert lease(runner)["secrets"] == {"DEPLOY_KEY": SECRET_VALUE}


def test_trigger_run_with_a_fork_sha_is_untrusted(repo_with_fork_pr, runner):
    out = io.StringIO()
    call_command(
        "trigger_run", "hello", "--ref", "master", "--sha", repo_with_fork_pr.fork, stdout=out
    )
    run = Run.objects.get(pk=int(out.getvalue().split()[-1]))
    do_plan_run(run.pk)
    run.refresh_from_db()
    assert_untrusted(run, runner, "is not reachable")


@pytest.mark.parametrize("failed_only", [False, True])
def test_reruns_stay_untrusted(api_user, repo_with_fork_pr, runner, failed_only):
    run = api_run(api_user, "master", repo_with_fork_pr.fork)
    granted = lease(runner)
    complete(runner, granted, status="FAILED", exit_code=1)
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    rerun, _ = do_rerun_run(run, failed_only=failed_only, actor="user:mia")
    assert rerun.is_fork is True and rerun.untrusted_reason == run.untrusted_reason
    do_plan_run(rerun.pk)
    rerun.refresh_from_db()
    assert rerun.state == RunState.QUEUED, rerun.plan_error
    assert lease(runner)["secrets"] == {}


def test_a_rerun_of_a_trusted_api_run_is_checked_again(api_user, repo_with_fork_pr, runner):
    """A full rerun plans from the repository again, so it checks again: here the branch
    was force-pushed so the commit is no longer on it."""
    run = api_run(api_user, "master", repo_with_fork_pr.head)
    complete(runner, lease(runner))
    repo_with_fork_pr.git("reset", "--quiet", "--hard", repo_with_fork_pr.base)
    repo_with_fork_pr.git("reflog", "expire", "--expire=now", "--all")
    run.refresh_from_db()
    rerun, _ = do_rerun_run(run, actor="user:mia")
    do_plan_run(rerun.pk)
    rerun.refresh_from_db()
    assert rerun.is_fork is True and "not reachable" in rerun.untrusted_reason
