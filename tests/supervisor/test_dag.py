"""Releasing a run's DAG (needs met -> QUEUED, a need failed -> SKIPPED with NEED_FAILED),
run finalisation with allow-failure jobs and empty plans, cancel_superseded, and the
supervisor's safety net for runs nothing else would move."""

from apps.runners.supervisor import advance_runs, supervise_once
from apps.runs import states
from apps.runs.cancelling import cancel_superseded, do_cancel_run
from apps.runs.models import Job, JobAttempt, Run, StateEvent
from tests.conftest import job_spec


def finish(proto, status: str = "SUCCEEDED") -> str:
    g = proto.start()
    assert (
        proto.complete(g["lease_id"], status, 0 if status == "SUCCEEDED" else 1).status_code == 200
    )
    return g["job_spec"]["name"]


def job_states(run) -> dict:
    return dict(Job.objects.filter(run=run).values_list("name", "state"))


def test_jobs_are_queued_when_their_needs_succeed(make_run, proto):
    run = make_run(
        [job_spec("build"), job_spec("test", needs=["build"]), job_spec("lint", needs=["build"])]
    )
    assert job_states(run) == {"build": "QUEUED", "test": "PENDING", "lint": "PENDING"}
    assert finish(proto) == "build"
    assert job_states(run) == {"build": "SUCCEEDED", "test": "QUEUED", "lint": "QUEUED"}
    assert {finish(proto), finish(proto)} == {"test", "lint"}
    assert Run.objects.get(pk=run.pk).state == "SUCCESS"


def test_dependents_of_a_failed_job_are_skipped_in_cascade(make_run, proto):
    run = make_run(
        [job_spec("build"), job_spec("test", needs=["build"]), job_spec("deploy", needs=["test"])]
    )
    finish(proto, "FAILED")
    jobs = {j.name: j for j in Job.objects.filter(run=run)}
    assert jobs["test"].state == "SKIPPED" and jobs["test"].reason_code == "NEED_FAILED"
    assert "build" in jobs["test"].reason
    assert jobs["deploy"].state == "SKIPPED" and "test" in jobs["deploy"].reason
    run.refresh_from_db()
    assert run.state == "FAILED" and "build" in run.reason


def test_an_allowed_failure_does_not_fail_the_run(make_run, proto):
    run = make_run([job_spec("build"), job_spec("lint", allow_failure=True)])
    names = {finish(proto, "SUCCEEDED" if n == 0 else "FAILED") for n in range(2)}
    assert names == {"build", "lint"}
    assert job_states(run) == {"build": "SUCCEEDED", "lint": "FAILED"}
    assert Run.objects.get(pk=run.pk).state == "SUCCESS"


def test_a_required_job_skipped_after_an_allowed_failure_fails_the_run(make_run, proto):
    run = make_run([job_spec("lint", allow_failure=True), job_spec("test", needs=["lint"])])
    finish(proto, "FAILED")
    assert job_states(run) == {"lint": "FAILED", "test": "SKIPPED"}
    assert Run.objects.get(pk=run.pk).state == "FAILED"


def test_an_optional_job_may_fail(make_run, proto):
    run = make_run([job_spec("build"), job_spec("docs", required=False)])
    assert finish(proto) == "build"
    assert finish(proto, "FAILED") == "docs"
    assert job_states(run) == {"build": "SUCCEEDED", "docs": "FAILED"}
    assert Run.objects.get(pk=run.pk).state == "SUCCESS"


def test_a_plan_with_no_jobs_succeeds_at_once(make_run):
    run = make_run([])
    assert run.state == "SUCCESS" and run.finished_at is not None


def test_a_plan_whose_jobs_were_all_skipped_by_the_planner_succeeds(repo):
    from apps.runs.engine import advance_run

    run = Run.objects.create(
        repository=repo, trigger="push", event_key="e", ref="r", commit_sha="a" * 40
    )
    states.transition(states.RUN, run, "PLANNING", actor="system")
    Job.objects.create(
        run=run, name="web:test", state="SKIPPED", required=False, reason_code="NOT_AFFECTED"
    )
    states.transition(states.RUN, run, "QUEUED", actor="system")
    advance_run(run, actor="system")
    assert Run.objects.get(pk=run.pk).state == "SUCCESS"


def test_a_need_skipped_by_the_planner_counts_as_met(make_run):
    run = make_run([job_spec("docs"), job_spec("test", needs=["docs"])])
    Job.objects.filter(run=run, name="docs").update(state="SKIPPED", reason_code="NOT_AFFECTED")
    JobAttempt.objects.filter(job__name="docs").update(state="CANCELED")
    from apps.runs.engine import advance_run

    advance_run(run, actor="system")
    assert job_states(run)["test"] == "QUEUED"


def test_cancel_superseded_cancels_older_runs_of_the_same_ref(make_run, proto, repo):
    old = make_run([job_spec("a"), job_spec("b")], ref="refs/heads/feature")
    g = proto.start()
    other_ref = make_run([job_spec("c")], ref="refs/heads/main")
    new = make_run([job_spec("d")], ref="refs/heads/feature")
    assert cancel_superseded(new, actor="system") == [old.pk]
    old.refresh_from_db()
    assert old.state == "CANCEL_REQUESTED" and old.cancel_reason == "SUPERSEDED"
    hb = proto.heartbeat(g["lease_id"]).json()
    assert hb["cancel_requested"] and hb["cancel_reason"] == "SUPERSEDED"
    assert Run.objects.get(pk=other_ref.pk).state == "QUEUED"
    assert Run.objects.get(pk=new.pk).state == "QUEUED"
    assert cancel_superseded(new, actor="system") == [old.pk]  # idempotent
    proto.cancel_ack(g["lease_id"])
    assert Run.objects.get(pk=old.pk).state == "CANCELED"


def test_a_newer_run_is_never_superseded_by_an_older_one(make_run, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    old = make_run(ref="refs/heads/x")
    time_machine.move_to("2026-01-04T08:01:00Z", tick=False)
    new = make_run(ref="refs/heads/x")
    assert cancel_superseded(old, actor="system") == []
    assert Run.objects.get(pk=new.pk).state == "QUEUED"


def test_the_safety_net_finalises_a_run_nothing_else_would_move(make_run):
    run = make_run([job_spec("a"), job_spec("b", needs=["a"])])
    # A run left behind: its only attempt ended but nobody resolved the job.
    JobAttempt.objects.filter(run=run).update(state="SUCCEEDED")
    Job.objects.filter(run=run, name="a").update(state="SUCCEEDED")
    assert advance_runs() == 0  # b is now queued: the run did not change state
    assert job_states(run)["b"] == "QUEUED"
    JobAttempt.objects.filter(run=run).update(state="SUCCEEDED")
    Job.objects.filter(run=run).update(state="SUCCEEDED")
    assert supervise_once()["runs_advanced"] == 1
    assert Run.objects.get(pk=run.pk).state == "SUCCESS"


def test_the_safety_net_leaves_busy_runs_alone(make_run, proto):
    make_run([job_spec(str(i)) for i in range(3)])
    proto.start()
    events = StateEvent.objects.count()
    assert advance_runs() == 0 and StateEvent.objects.count() == events


def test_a_run_cancelled_while_planning_is_finalised(repo):
    run = Run.objects.create(
        repository=repo, trigger="push", event_key="e", ref="r", commit_sha="a" * 40
    )
    states.transition(states.RUN, run, "PLANNING", actor="system")
    assert do_cancel_run(run, actor="user:op")
    assert Run.objects.get(pk=run.pk).state == "CANCELED"


def test_the_supervisor_supersedes_what_a_newer_push_made_obsolete(make_run, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    old = make_run(ref="refs/heads/x", trigger="push")
    kept = make_run(ref="refs/heads/y", trigger="push")
    time_machine.shift(60)
    make_run(ref="refs/heads/x", trigger="push")
    make_run(ref="refs/heads/y", trigger="manual")  # manual runs supersede nothing
    assert supervise_once()["runs_superseded"] == 1
    old.refresh_from_db()
    assert old.state == "CANCELED" and old.cancel_reason == "SUPERSEDED"
    assert Run.objects.get(pk=kept.pk).state == "QUEUED"
    assert supervise_once()["runs_superseded"] == 0


def test_a_newer_plan_may_keep_older_runs(make_run, time_machine):
    time_machine.move_to("2026-01-04T08:00:00Z", tick=False)
    old = make_run(ref="refs/heads/x", trigger="push")
    time_machine.shift(60)
    new = make_run(ref="refs/heads/x", trigger="push")
    Run.objects.filter(pk=new.pk).update(
        plan={"jobs": [], "policies": {"cancel_superseded": False}}
    )
    assert supervise_once()["runs_superseded"] == 0
    assert Run.objects.get(pk=old.pk).state == "QUEUED"
