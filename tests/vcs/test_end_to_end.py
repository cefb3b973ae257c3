"""Done-when: replaying the fixtures against a running server creates exactly the
expected runs, and a pull request run's life — planned from a real repository, driven
through the runner protocol — is mirrored in the fake GitHub's check-run updates and a
single PR comment, edited in place by the next run."""

import json
import uuid
from itertools import groupby

import pytest
import requests

from apps.runs.choices import RunState
from apps.runs.models import Run
from tests.vcs.conftest import FULL_NAME, complete, derived, fixture_bytes, lease, sign
from tests.vcs.test_webhook_signature import ALL

pytestmark = pytest.mark.django_db(transaction=True)


def send(live_server, event: str, body: bytes) -> requests.Response:
    return requests.post(
        f"{live_server.url}/api/v1/webhooks/github",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body),
        },
        timeout=60,
    )


def test_it_replays_every_fixture_into_exactly_the_expected_runs(
    live_server, gh_repo, webhook_secret
):
    answers = {name: send(live_server, name.split(".")[0], fixture_bytes(name)) for name in ALL}
    assert {n: r.status_code for n, r in answers.items() if r.status_code >= 400} == {}
    runs = sorted(
        Run.objects.values_list("trigger", "ref", "commit_sha", "base_sha", "pr_number", "is_fork")
    )
    assert runs == [
        (
            "pull_request",
            "refs/pull/2/head",
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            2,
            False,
        ),
        (
            "push",
            "refs/heads/master",
            "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            None,
            False,
        ),
    ]  # fmt: skip  (push.branch.derived.json comes first; push.new-branch.json is its duplicate)
    # The fixtures' commits are not in any repository: planning says so, honestly.
    for run in Run.objects.all():
        assert run.state == RunState.FAILED and "could not read the repository" in run.plan_error
        assert run.report_status == "disabled"  # GitHub credentials are not configured


def test_it_mirrors_a_pull_request_run_on_github(
    live_server, git_repo, webhook_secret, github_app, runner
):
    opened = derived(
        "pull_request.opened.json",
        pull_request__head__sha=git_repo.head,
        pull_request__base__sha=git_repo.base,
    )
    resp = send(live_server, "pull_request", opened)
    assert resp.status_code == 201, resp.content
    first = Run.objects.get(pk=resp.json()["run_id"])
    assert first.state == RunState.QUEUED, first.plan_error
    granted = lease(runner)
    assert github_app.issued[granted["source"]["clone_token"]]["permissions"] == {
        "contents": "read"
    }
    lid = granted["lease_id"]
    c = runner.client
    assert c.post("/api/v1/internal/ack-lease", {"type": "AckLease", "lease_id": lid,
                  "job_id": granted["job_id"]}, format="json").status_code == 200  # fmt: skip
    assert c.post("/api/v1/internal/heartbeat", {"type": "Heartbeat", "lease_id": lid},
                  format="json").status_code == 200  # fmt: skip
    complete(runner, granted, "SUCCEEDED")
    first.refresh_from_db()
    assert first.state == RunState.SUCCESS and first.reported_at is not None

    # A new push to the pull request: the next run edits the same comment.
    head2 = git_repo.commit({"app.py": "x = 3\n"}, "head 2")
    git_repo.git("update-ref", "refs/pull/2/head", head2)
    sync = json.loads(derived("pull_request.synchronize.json", pull_request__head__sha=head2,
                              pull_request__base__sha=git_repo.base))  # fmt: skip
    resp = send(live_server, "pull_request", json.dumps(sync).encode())
    assert resp.status_code == 201, resp.content
    second = Run.objects.get(pk=resp.json()["run_id"])
    complete(runner, lease(runner), "FAILED", exit_code=1, summary="1 test failed")
    second.refresh_from_db()
    assert second.state == RunState.FAILED and second.reported_at is not None

    checks = {c["external_id"]: c for c in github_app.check_runs.values()}
    assert set(checks) == {f"delta-ci-run-{first.pk}", f"delta-ci-run-{second.pk}"}
    for run, conclusion in ((first, "success"), (second, "failure")):
        check = checks[f"delta-ci-run-{run.pk}"]
        assert check["head_sha"] == run.commit_sha
        statuses = [s for s, _ in groupby(h["status"] for h in check["history"])]
        assert statuses == ["queued", "in_progress", "completed"]
        assert check["conclusion"] == conclusion
        assert "| test |" in check["output"]["summary"]
    assert len(github_app.named("POST", rf"/repos/{FULL_NAME}/check-runs")) == 2
    assert len(github_app.named("POST", rf"/repos/{FULL_NAME}/issues/2/comments")) == 1
    assert len(github_app.named("PATCH", rf"/repos/{FULL_NAME}/issues/comments/\d+")) == 1
    (comment,) = github_app.comments.values()
    assert f"/runs/{second.pk}" in comment["body"] and "Delta CI: failure" in comment["body"]
    assert "1 test failed" in comment["body"]


def test_it_supersedes_an_older_push_run_of_the_same_branch(live_server, git_repo, webhook_secret):
    head2 = git_repo.commit({"app.py": "x = 3\n"}, "head 2")
    first = send(live_server, "push", derived("push.branch.derived.json", before=git_repo.base,
                                              after=git_repo.head))  # fmt: skip
    older = Run.objects.get(pk=first.json()["run_id"])
    assert older.state == RunState.QUEUED, older.plan_error
    second = send(live_server, "push", derived("push.branch.derived.json", before=git_repo.head,
                                               after=head2))  # fmt: skip
    newer = Run.objects.get(pk=second.json()["run_id"])
    older.refresh_from_db()
    assert newer.state == RunState.QUEUED
    assert older.state == RunState.CANCELED and older.cancel_reason == "SUPERSEDED"
