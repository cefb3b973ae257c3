"""What each delivery does: pushes and pull requests create runs (idempotently),
deletions and tags (unless the policy builds them) create none, closing a pull request
cancels its runs, and anything else is acknowledged and ignored."""

import pytest

from apps.runs.choices import RunState
from apps.runs.models import Run
from apps.vcs.models import WebhookDelivery
from tests.vcs.conftest import deliver, derived, fixture_bytes

SHA_6113728 = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
SHA_EC26C3E = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
SHA_F95F852 = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
ZERO = "0" * 40


@pytest.fixture
def post(client, gh_repo, webhook_secret):
    def send(name, event=None, body=None, **kw):
        return deliver(client, event or name.split(".")[0], body or fixture_bytes(name), **kw)

    return send


def test_it_creates_a_push_run_with_its_base(post, gh_repo):
    resp = post("push.branch.derived.json")
    assert resp.status_code == 201, resp.content
    run = Run.objects.get()
    assert resp.json() == {
        "outcome": "created",
        "detail": f"run {run.pk} created",
        "run_id": str(run.pk),
    }
    assert (run.repository, run.trigger, run.ref) == (gh_repo, "push", "refs/heads/master")
    assert (run.commit_sha, run.base_sha) == (SHA_6113728, SHA_F95F852)
    assert run.pr_number is None and run.is_fork is False and run.state == RunState.CREATED
    assert run.started_by == "github"


def test_it_creates_a_run_for_a_new_branch_without_a_base(post):
    assert post("push.new-branch.json").status_code == 201
    assert Run.objects.get().base_sha == ZERO


def test_it_creates_nothing_for_a_deleted_branch_or_tag(post):
    for name in ("push.branch-deleted.derived.json", "push.tag-deleted.json"):
        resp = post(name)
        assert resp.status_code == 202 and resp.json()["outcome"] == "ignored"
        assert "deleted" in resp.json()["detail"]
    assert Run.objects.count() == 0


def test_it_builds_tags_only_when_the_policy_says_so(post, gh_repo):
    resp = post("push.tag-created.ghes.json")
    assert resp.status_code == 202 and "build_tags" in resp.json()["detail"]
    assert Run.objects.count() == 0
    gh_repo.policy.build_tags = True
    gh_repo.policy.save()
    assert post("push.tag-created.ghes.json").status_code == 201
    run = Run.objects.get()
    assert (run.ref, run.commit_sha) == ("refs/tags/simple-tag", SHA_6113728)


def test_it_ignores_pushes_to_other_refs(post):
    body = derived("push.branch.derived.json", ref="refs/notes/commits")
    resp = post("push", body=body)
    assert resp.status_code == 202 and Run.objects.count() == 0


@pytest.mark.parametrize(
    "name",
    [
        "pull_request.opened.json",
        "pull_request.opened.null-body.json",
        "pull_request.synchronize.json",
        "pull_request.reopened.json",
    ],
)
def test_it_creates_a_pull_request_run(post, name):
    assert post(name).status_code == 201
    run = Run.objects.get()
    assert (run.trigger, run.ref, run.pr_number) == ("pull_request", "refs/pull/2/head", 2)
    assert (run.commit_sha, run.base_sha, run.is_fork) == (SHA_EC26C3E, SHA_F95F852, False)


def test_it_marks_a_fork_pull_request(post):
    assert post("pull_request.synchronize.fork.derived.json").status_code == 201
    assert Run.objects.get().is_fork is True


def test_it_treats_a_deleted_head_repository_as_a_fork(post):
    body = derived("pull_request.synchronize.json", pull_request__head__repo=None)
    assert post("pull_request", body=body).status_code == 201
    assert Run.objects.get().is_fork is True


def test_it_creates_nothing_new_on_redelivery(post):
    first = post("pull_request.opened.json", delivery="d-1")
    again = post("pull_request.opened.json", delivery="d-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["run_id"] == first.json()["run_id"]
    assert Run.objects.count() == 1
    delivery = WebhookDelivery.objects.get(delivery_id="d-1")
    assert delivery.times_received == 2 and delivery.run_id == int(first.json()["run_id"])
    # Another delivery of the same PR head (e.g. synchronize after opened) is the same run.
    assert post("pull_request.synchronize.json", delivery="d-2").json()["outcome"] == "duplicate"
    assert Run.objects.count() == 1 and WebhookDelivery.objects.count() == 2


def test_it_keys_pushes_by_branch_and_commit(post):
    post("push.branch.derived.json")
    post("push.new-branch.json")  # the same commit on the same branch
    assert Run.objects.count() == 1
    other = derived("push.branch.derived.json", ref="refs/heads/release")
    assert post("push", body=other).status_code == 201
    assert Run.objects.count() == 2


def test_it_cancels_a_closed_pull_requests_active_runs(post, gh_repo):
    run_id = int(post("pull_request.opened.json").json()["run_id"])
    push_id = int(post("push.branch.derived.json").json()["run_id"])
    resp = post("pull_request.closed.json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["canceled_run_ids"] == [str(run_id)]
    run = Run.objects.get(pk=run_id)
    assert run.state == RunState.CANCELED and run.cancel_reason == "RUN_CANCELED"
    assert Run.objects.get(pk=push_id).state == RunState.CREATED
    assert run.events.filter(to_state="CANCEL_REQUESTED", actor__startswith="github").exists()
    # Closing again finds nothing to cancel.
    assert post("pull_request.closed.json").json().get("canceled_run_ids") is None


def test_it_builds_a_reopened_pull_request_again_after_closing(post):
    first = int(post("pull_request.opened.json").json()["run_id"])
    post("pull_request.closed.json")
    resp = post("pull_request.reopened.json")
    assert resp.status_code == 201
    second = int(resp.json()["run_id"])
    assert second != first and Run.objects.get(pk=second).state == RunState.CREATED
    # A replay of the reopen (any delivery id) finds the new run.
    assert post("pull_request.reopened.json").json()["run_id"] == str(second)
    assert Run.objects.count() == 2


@pytest.mark.parametrize(
    "name",
    [
        "pull_request.labeled.json",
        "check_run.completed.json",
        "check_run.created.json",
        "check_run.requested_action.json",
        "check_run.rerequested.json",
        "check_suite.completed.json",
        "check_suite.requested.json",
        "check_suite.rerequested.json",
    ],
)
def test_it_acknowledges_and_ignores_other_events(post, name):
    resp = post(name)
    assert resp.status_code == 202 and resp.json()["outcome"] == "ignored"
    assert Run.objects.count() == 0


@pytest.mark.parametrize("name", ["ping.json", "ping.organization.json"])
def test_it_answers_ping(post, name):
    resp = post(name)
    assert resp.status_code == 200 and resp.json()["outcome"] == "pong"
    assert WebhookDelivery.objects.get().outcome == "pong"


def test_it_ignores_unknown_repositories(post, caplog):
    body = derived("push.branch.derived.json", repository__full_name="someone/else")
    resp = post("push", body=body)
    assert resp.status_code == 202
    assert "no repository is connected to someone/else" in resp.json()["detail"]
    assert Run.objects.count() == 0
    assert "unknown repository someone/else" in caplog.text


def test_it_matches_repository_names_case_insensitively(post):
    body = derived("push.branch.derived.json", repository__full_name="codertocat/hello-world")
    assert post("push", body=body).status_code == 201


def test_it_replays_every_fixture_into_exactly_the_expected_runs(post, gh_repo):
    from tests.vcs.test_webhook_signature import ALL

    for name in ALL:
        resp = post(name)
        assert resp.status_code in (200, 201, 202), (name, resp.content)
    runs = {(r.trigger, r.ref, r.commit_sha, r.is_fork) for r in Run.objects.all()}
    assert runs == {
        ("push", "refs/heads/master", SHA_6113728, False),
        ("pull_request", "refs/pull/2/head", SHA_EC26C3E, False),
    }
    # Redelivering every delivery (same delivery ids) creates nothing.
    deliveries = list(WebhookDelivery.objects.values_list("delivery_id", flat=True))
    assert len(deliveries) == len(ALL)
    for name, delivery in zip(ALL, WebhookDelivery.objects.order_by("pk"), strict=True):
        if name != "pull_request.closed.json":
            post(name, delivery=delivery.delivery_id)
    assert Run.objects.count() == 2
    assert set(WebhookDelivery.objects.values_list("times_received", flat=True)) <= {1, 2}
