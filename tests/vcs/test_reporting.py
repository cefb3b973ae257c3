"""Reporting runs to a fake GitHub on loopback: one check run per run moved through
queued / in_progress / completed, one pull request comment created once and edited in
place, retries on 5xx and rate limits, and failures that stay visible on the run
without ever changing it."""

import pytest
import time_machine
from django.utils import timezone

from apps.runs.cancelling import do_cancel_run
from apps.runs.choices import RunState
from apps.runs.models import Run
from apps.vcs import tasks
from apps.vcs.models import PullRequestComment, RunReport
from tests.conftest import job_spec
from tests.vcs.conftest import FULL_NAME, complete, lease

CHECKS = rf"/repos/{FULL_NAME}/check-runs"
CHECK = rf"/repos/{FULL_NAME}/check-runs/\d+"
COMMENTS = rf"/repos/{FULL_NAME}/issues/2/comments"
COMMENT = rf"/repos/{FULL_NAME}/issues/comments/\d+"


@pytest.fixture
def pr_run(make_run, gh_repo, django_capture_on_commit_callbacks):
    def make(specs=None, **fields):
        fields = {
            "trigger": "pull_request",
            "ref": "refs/pull/2/head",
            "pr_number": 2,
            "base_sha": "b" * 40,
            **fields,
        }
        with django_capture_on_commit_callbacks(execute=True):
            run = make_run(specs or [job_spec("build")], repository=gh_repo, **fields)
        return Run.objects.get(pk=run.pk)

    return make


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def only_check_run(gh) -> dict:
    assert len(gh.check_runs) == 1, gh.check_runs
    return next(iter(gh.check_runs.values()))


def test_it_mirrors_a_runs_life_in_one_check_run_and_one_comment(
    github_app, pr_run, runner, on_commit, settings
):
    settings.DELTACI_PUBLIC_URL = "https://ci.example.test"
    run = pr_run([job_spec("lint"), job_spec("test", needs=["lint"])])
    check = only_check_run(github_app)
    assert check["status"] == "queued" and check["head_sha"] == run.commit_sha
    assert check["name"] == "Delta CI" and check["external_id"] == f"delta-ci-run-{run.pk}"
    assert check["details_url"] == f"https://ci.example.test/runs/{run.pk}"
    with on_commit():
        g = lease(runner)
    assert only_check_run(github_app)["status"] == "in_progress"
    with on_commit():
        complete(runner, g, "FAILED", exit_code=1, summary="2 tests failed")
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    check = only_check_run(github_app)
    assert [h["status"] for h in check["history"]] == ["queued", "in_progress", "completed"]
    assert check["conclusion"] == "failure"
    summary = check["output"]["summary"]
    assert "| lint | FAILED |" in summary and "| test | SKIPPED |" in summary
    assert "skipped because lint did not succeed" in summary
    assert "### Failures" in summary and "**lint**: user" in summary and "exit code 1" in summary
    assert f"https://ci.example.test/runs/{run.pk}" in summary
    assert len(github_app.named("POST", CHECKS)) == 1
    # One comment on the pull request, with the same summary.
    assert len(github_app.named("POST", COMMENTS)) == 1
    (comment,) = github_app.comments.values()
    assert comment["issue"] == 2 and "Delta CI: failure" in comment["body"]
    assert run.report_status == "reported" and run.report_error == ""
    assert run.reported_at is not None
    report = RunReport.objects.get(run=run)
    assert report.last_state == RunState.FAILED and report.check_run_id == check["id"]


def test_it_edits_the_one_comment_for_every_later_run_of_the_pull_request(
    github_app, pr_run, on_commit
):
    first = pr_run()
    with on_commit():
        do_cancel_run(first, actor="user:op")
    second = pr_run(commit_sha="c" * 40)
    with on_commit():
        do_cancel_run(second, actor="user:op")
    assert len(github_app.named("POST", COMMENTS)) == 1
    assert len(github_app.named("PATCH", COMMENT)) == 1
    (comment,) = github_app.comments.values()
    assert f"runs/{second.pk}" in comment["body"] and "cancelled" in comment["body"]
    # The older run reported late never overwrites the newer one.
    with on_commit():
        tasks.report_run.delay(first.pk, "CANCELED")
    assert len(github_app.named("PATCH", COMMENT)) == 1
    assert PullRequestComment.objects.get().run_id == second.pk
    assert len(github_app.check_runs) == 2


@pytest.mark.parametrize(
    "status,headers,body",
    [
        (500, {}, {"message": "Server Error"}),
        (502, {}, {}),
        (429, {"Retry-After": "0"}, {"message": "Too Many Requests"}),
        (403, {"Retry-After": "0"}, {"message": "You have exceeded a secondary rate limit"}),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"}, {"message": "API rate"}),
    ],
)
def test_it_retries_transient_failures(github_app, pr_run, status, headers, body):
    github_app.fail("POST", CHECKS, status, headers=headers, body=body, times=2)
    run = pr_run()
    assert len(github_app.named("POST", CHECKS)) == 3
    assert only_check_run(github_app)["status"] == "queued"
    run.refresh_from_db()
    assert run.report_status == "reported" and run.report_error == ""
    assert RunReport.objects.get(run=run).attempts >= 3


def test_it_retries_a_failed_comment_and_still_creates_only_one(github_app, pr_run, on_commit):
    run = pr_run()
    github_app.fail("POST", COMMENTS, 500, times=1)
    github_app.fail("PATCH", CHECK, 429, headers={"Retry-After": "0"}, times=1)
    with on_commit():
        do_cancel_run(run, actor="user:op")
    assert len(github_app.comments) == 1
    assert only_check_run(github_app)["conclusion"] == "cancelled"
    run.refresh_from_db()
    assert run.report_status == "reported" and run.reported_at is not None


def test_it_gives_up_visibly_without_touching_the_run(github_app, pr_run, runner, on_commit):
    run = pr_run()
    github_app.fail("PATCH", CHECK, 503, times=100)
    with on_commit():
        g = lease(runner)
    with on_commit():
        complete(runner, g, "SUCCEEDED")  # the runner's call succeeds whatever GitHub does
    run.refresh_from_db()
    assert run.state == RunState.SUCCESS
    assert run.report_status == "failed" and "503" in run.report_error
    assert run.reported_at is None
    # First PATCH (in_progress) and the SUCCESS one each tried 1 + MAX_RETRIES times.
    assert len(github_app.named("PATCH", CHECK)) == 2 * (1 + tasks.MAX_RETRIES)
    # GitHub recovers: the next report (e.g. the reconciler's) publishes the final state.
    github_app.failures.clear()
    with on_commit():
        tasks.report_run.delay(run.pk, "reconcile")
    run.refresh_from_db()
    assert run.report_status == "reported" and run.reported_at is not None
    assert only_check_run(github_app)["conclusion"] == "success"


def test_it_does_not_retry_what_github_refuses(github_app, pr_run):
    github_app.fail("POST", CHECKS, 422, body={"message": "Validation Failed"}, times=5)
    run = pr_run()  # two transitions (PLANNING, QUEUED): two tries, neither retried
    assert len(github_app.named("POST", CHECKS)) == 2
    assert github_app.named("GET", rf"/repos/{FULL_NAME}/commits/\w+/check-runs") == []
    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    assert run.report_status == "failed"
    assert run.report_error == "GitHub answered 422: Validation Failed"


def test_it_never_creates_a_second_check_run_when_an_answer_is_lost(github_app, pr_run):
    github_app.lose_next_create.add("check-runs")
    run = pr_run()
    assert len(github_app.named("POST", CHECKS)) == 1
    assert len(github_app.named("GET", rf"/repos/{FULL_NAME}/commits/\w+/check-runs")) == 1
    check = only_check_run(github_app)
    assert RunReport.objects.get(run=run).check_run_id == check["id"]


def test_it_never_creates_a_second_comment_when_an_answer_is_lost(github_app, pr_run, on_commit):
    run = pr_run()
    github_app.lose_next_create.add("comments")
    with on_commit():
        do_cancel_run(run, actor="user:op")
    assert len(github_app.named("POST", COMMENTS)) == 1
    assert len(github_app.named("GET", COMMENTS)) == 1
    assert len(github_app.comments) == 1
    assert PullRequestComment.objects.get().comment_id == next(iter(github_app.comments))


def test_it_reports_the_current_state_not_the_one_it_was_told(github_app, pr_run, on_commit):
    run = pr_run()
    with on_commit():
        do_cancel_run(run, actor="user:op")
    patches = len(github_app.named("PATCH", CHECK))
    # A task for an old transition running late: reports the state in the database.
    with on_commit():
        tasks.report_run.delay(run.pk, "QUEUED")
        tasks.report_run.delay(run.pk, "RUNNING")
    check = only_check_run(github_app)
    assert check["status"] == "completed" and check["conclusion"] == "cancelled"
    assert len(github_app.named("PATCH", CHECK)) == patches  # nothing new to say
    assert [h["status"] for h in check["history"]][-1] == "completed"


def test_it_leaves_a_busy_report_to_its_holder_and_reconciles_it_later(
    github_app, pr_run, on_commit
):
    run = pr_run()
    report = RunReport.objects.get(run=run)
    now = timezone.now()
    RunReport.objects.filter(pk=report.pk).update(busy_until=now + timezone.timedelta(minutes=2))
    with on_commit():
        do_cancel_run(run, actor="user:op")  # another worker holds the report: this task steps back
    assert only_check_run(github_app)["status"] == "queued"
    assert RunReport.objects.get(pk=report.pk).dirty is True
    with time_machine.travel(now + timezone.timedelta(minutes=5), tick=False), on_commit():
        assert tasks.reconcile_reports() == 1
    assert only_check_run(github_app)["conclusion"] == "cancelled"
    assert RunReport.objects.get(pk=report.pk).dirty is False
    assert tasks.reconcile_reports() == 0


def test_it_reconciles_finished_runs_that_were_never_reported(github_app, gh_repo, make_run):
    run = make_run(repository=gh_repo)  # transitions committed without reporting
    Run.objects.filter(pk=run.pk).update(
        state=RunState.SUCCESS, finished_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    assert tasks.reconcile_reports() == 1
    run.refresh_from_db()
    assert run.reported_at is not None
    assert only_check_run(github_app)["conclusion"] == "success"


def test_it_uses_commit_statuses_with_a_personal_token(github_pat, pr_run, on_commit):
    run = pr_run()
    with on_commit():
        do_cancel_run(run, actor="user:op")
    assert github_pat.named("POST", CHECKS) == []  # GitHub keeps check runs for Apps
    states = [s["state"] for s in github_pat.statuses]
    assert states == ["pending", "error"]
    assert all(
        s["context"] == "delta-ci" and s["sha"] == run.commit_sha for s in github_pat.statuses
    )
    assert len(github_pat.comments) == 1
    assert all(c.auth == f"Bearer {github_pat.pat}" for c in github_pat.calls)


def test_it_reports_nothing_without_github_credentials(pr_run):
    run = pr_run()
    assert run.report_status == "disabled" and run.reported_at is None


def test_it_reports_nothing_for_repositories_not_on_github(github_app, make_run, on_commit):
    with on_commit():
        run = make_run()
        do_cancel_run(run, actor="user:op")
    run.refresh_from_db()
    assert github_app.calls == [] and run.report_status == ""


def test_it_escapes_untrusted_text_in_summaries(github_app, pr_run, runner, on_commit):
    pr_run([job_spec("deploy|@octo-org/admins")])
    with on_commit():
        g = lease(runner)
        complete(
            runner, g, "FAILED", exit_code=1, summary="``` </details> @everyone [x](http://evil)"
        )
    body = next(iter(github_app.comments.values()))["body"]
    assert "@octo-org" not in body and "@everyone" not in body.split("````")[0]
    assert "deploy\\|@\u200bocto-org/admins" in body
    # Log-derived text sits in a fence longer than any backtick run inside it.
    assert "````text\nstep failed (exit 1)\n``` </details> @everyone [x](http://evil)\n````" in body


def test_it_gives_a_failing_report_a_bounded_number_of_second_chances(
    github_app, pr_run, on_commit
):
    github_app.fail("POST", CHECKS, 422, body={"message": "Validation Failed"}, times=1000)
    run = pr_run()
    with on_commit():
        do_cancel_run(run, actor="user:op")
    later = timezone.now() + timezone.timedelta(minutes=5)
    rounds = 0
    with time_machine.travel(later, tick=False):
        while True:
            with on_commit():
                if not tasks.reconcile_reports():
                    break
            rounds += 1
            assert rounds <= tasks.RECONCILE_MAX_ATTEMPTS
    report = RunReport.objects.get(run=run)
    assert report.attempts == tasks.RECONCILE_MAX_ATTEMPTS and rounds > 0
    run.refresh_from_db()
    assert run.state == RunState.CANCELED and run.report_status == "failed"
    assert len(github_app.named("POST", CHECKS)) == tasks.RECONCILE_MAX_ATTEMPTS


def test_it_does_not_reconcile_runs_reported_as_disabled(gh_repo, make_run):
    run = make_run(repository=gh_repo)
    Run.objects.filter(pk=run.pk).update(
        state=RunState.SUCCESS,
        finished_at=timezone.now() - timezone.timedelta(minutes=5),
        report_status="disabled",
    )
    assert tasks.reconcile_reports() == 0
