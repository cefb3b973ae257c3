"""A planning task that dies with its worker (issue 13, item 10): the run's planning
lease runs out and the supervisor plans it again, on an injected clock; planning twice
stores one plan; a task delivered again without the current token plans nothing; three
lost planners fail the run."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.runners.supervisor import replan_lost_planning, supervise_once
from apps.runs import planlease
from apps.runs.actions import do_add_repository, do_create_run
from apps.runs.choices import RunState
from apps.runs.models import Run
from apps.runs.planning import _plan, do_plan_run
from tests.gitrepo import GitRepo

CONFIG = """version: 1
jobs:
  build:
    image: python:3.12
    steps: ["echo build"]
"""


@pytest.fixture
def created(db, settings, tmp_path) -> Run:
    settings.DELTACI_MIRROR_DIR = tmp_path / "mirrors"
    source = GitRepo(tmp_path / "src")
    sha = source.commit({"ci.ai.yaml": CONFIG})
    repo = do_add_repository("proj", str(source.path), actor="system")
    run, _ = do_create_run(
        repo, trigger="manual", ref="refs/heads/main", commit_sha=sha, actor="system"
    )
    return run


def killed_while_planning(run: Run) -> Run:
    """The planning task claimed the run, then its worker was SIGKILLed: no renewals."""
    assert planlease.claim(run) is not None
    run.refresh_from_db()
    assert run.state == RunState.PLANNING and run.planning_attempts == 1
    return run


def test_a_lost_planner_is_replaced_after_its_lease(
    created, settings, django_capture_on_commit_callbacks
):
    run = killed_while_planning(created)
    lease_end = run.planning_lease_until
    assert lease_end - timezone.now() <= timedelta(seconds=settings.DELTACI_PLANNING_LEASE_SECONDS)
    assert replan_lost_planning(lease_end - timedelta(seconds=1)) == 0  # still held
    with django_capture_on_commit_callbacks(execute=True):  # the new task runs eagerly
        assert replan_lost_planning(lease_end) == 1
    run.refresh_from_db()
    assert run.state == RunState.QUEUED, run.plan_error
    assert run.planning_attempts == 2 and list(run.jobs.values_list("name", flat=True)) == ["build"]
    assert AuditEvent.objects.filter(action="run.planning_redispatch", run=run).count() == 1


def test_the_supervisor_pass_includes_it(created):
    run = killed_while_planning(created)
    assert supervise_once(run.planning_lease_until)["planning_replanned"] == 1


def test_a_task_without_the_current_token_plans_nothing(created):
    run = killed_while_planning(created)
    do_plan_run(run.pk)  # the original message, delivered again by the broker
    do_plan_run(run.pk, "f" * 32)  # a token that was never handed out
    run.refresh_from_db()
    assert run.state == RunState.PLANNING and run.planning_attempts == 1
    assert not run.jobs.exists()


def test_a_handed_over_token_is_claimed_once(created):
    run = killed_while_planning(created)
    token = planlease.hand_over(run.pk, run.planning_token, run.planning_lease_until)
    assert token and planlease.hand_over(run.pk, "other", run.planning_lease_until) is None
    assert planlease.claim(run, token) is not None
    assert planlease.claim(run, token) is None  # the same message twice
    run.refresh_from_db()
    assert run.planning_attempts == 2 and run.planning_token != token


def test_planning_twice_stores_one_plan(created):
    """The first planner was only slow: it finishes after its successor."""
    run = killed_while_planning(created)
    token = planlease.hand_over(run.pk, run.planning_token, run.planning_lease_until)
    do_plan_run(run.pk, token)
    _plan(Run.objects.select_related("repository", "rerun_of").get(pk=run.pk))  # the slow one
    run.refresh_from_db()
    assert run.state == RunState.QUEUED and run.jobs.count() == 1


def test_three_lost_planners_fail_the_run(created, django_capture_on_commit_callbacks):
    run = killed_while_planning(created)
    for _ in range(planlease.MAX_PLANNING_ATTEMPTS - 1):
        token = planlease.hand_over(run.pk, run.planning_token, run.planning_lease_until)
        assert planlease.claim(run, token)  # the next task starts, and dies too
        run.refresh_from_db()
    assert run.planning_attempts == planlease.MAX_PLANNING_ATTEMPTS
    assert replan_lost_planning(run.planning_lease_until) == 1
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert "interrupted 3 times" in run.reason and "interrupted" in run.plan_error
    assert AuditEvent.objects.filter(action="run.planning_abandoned", run=run).exists()


def test_a_lost_dispatch_is_handed_over_again_without_counting(created, broker_down):
    run = killed_while_planning(created)
    assert replan_lost_planning(run.planning_lease_until) == 1  # sent into a dead broker
    run.refresh_from_db()
    assert replan_lost_planning(run.planning_lease_until) == 1
    run.refresh_from_db()
    assert run.state == RunState.PLANNING and run.planning_attempts == 1


def test_renewals_extend_only_the_holders_lease(created):
    run = killed_while_planning(created)
    before = run.planning_lease_until
    assert planlease.renew(run.pk, run.planning_token)
    assert not planlease.renew(run.pk, "not-the-holder")
    run.refresh_from_db()
    assert run.planning_lease_until >= before


@pytest.mark.django_db(transaction=True)
def test_a_live_planner_renews_from_its_thread(created, settings):
    import time

    settings.DELTACI_PLANNING_LEASE_SECONDS = 1  # renewals every 0.25 s
    first = timezone.now()  # committed here, so planning already ran: hold it by hand
    Run.objects.filter(pk=created.pk).update(
        state=RunState.PLANNING, planning_token="t" * 32, planning_lease_until=first
    )
    run = Run.objects.get(pk=created.pk)
    with planlease.held(run.pk, "t" * 32):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.planning_lease_until > first:
                break
            time.sleep(0.05)
    assert run.planning_lease_until > first
