"""The repositories page: the latest run of each default branch and of each open pull
request, with its state."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from apps.runs.actions import do_add_repository
from apps.runs.cancelling import do_cancel_run
from apps.runs.models import Run
from tests.conftest import SHA


def run(repo, key, **fields):
    base = {"trigger": "push", "ref": "refs/heads/main", "commit_sha": SHA, "state": "SUCCESS"}
    base.update(fields)
    return Run.objects.create(repository=repo, event_key=key, **base)


def test_it_shows_the_latest_default_branch_run_and_open_pull_requests(public, client):
    old = run(public, "1", state="FAILED")
    latest = run(public, "2", ref="main", state="RUNNING")  # a bare branch name counts too
    run(public, "3", ref="refs/heads/feature")
    pr_old = run(public, "4", trigger="pull_request", ref="refs/pull/5/head", pr_number=5)
    pr_new = run(
        public, "5", trigger="pull_request", ref="refs/pull/5/head", pr_number=5, state="FAILED"
    )
    pr_other = run(public, "6", trigger="pull_request", ref="refs/pull/9/head", pr_number=9)
    with time_machine.travel(timezone.now() - timedelta(days=60), tick=False):
        closed = run(public, "7", trigger="pull_request", ref="refs/pull/2/head", pr_number=2)
    shut = run(
        public, "8", trigger="pull_request", ref="refs/pull/3/head", pr_number=3, state="QUEUED"
    )
    do_cancel_run(shut, actor="github:pull_request.closed")  # what apps/vcs does on close
    html = client.get("/").content.decode()
    row = html.split("<strong>demo</strong>", 1)[1]
    assert f'href="/runs/{latest.pk}"' in row and f'href="/runs/{old.pk}"' not in row
    assert f'href="/runs/{pr_new.pk}"' in row and f'href="/runs/{pr_old.pk}"' not in row
    assert f'href="/runs/{pr_other.pk}"' in row
    assert "PR #5" in row and "PR #9" in row
    assert "PR #2" not in row and f'href="/runs/{closed.pk}"' not in row
    assert "PR #3" not in row and f'href="/runs/{shut.pk}"' not in row
    assert "RUNNING" in row and "FAILED" in row


def test_it_shows_a_repository_without_runs(public, client):
    do_add_repository("quiet", "/q.git", visibility="public", actor="system")
    html = client.get("/").content.decode()
    assert "quiet" in html and "no run yet" in html


def test_it_tells_anonymous_visitors_about_logging_in(db, client):
    html = client.get("/").content.decode()
    assert "No repositories to show" in html and "log in" in html
