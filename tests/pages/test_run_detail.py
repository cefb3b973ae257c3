"""The run page: what ran and why, jobs by DAG stage with their attempts, what was
skipped and why, planning errors, GitHub reporting, and the cancel / rerun buttons."""

from apps.audit.models import AuditEvent
from apps.runs import states
from apps.runs.choices import RunState
from apps.runs.models import Job, Run
from tests.conftest import SHA, job_spec
from tests.pages.factory import run_attempt

PLAN = {
    "source": "fallback",
    "explain": "Planned from discovered projects: 2 projects (1 python, 1 node).",
    "changed_paths": ["api/app.py", "web/<b>index</b>.js"],
    "fallback_reason": "diff unavailable: first push of a branch",
    "base_sha": "c" * 40,
    "jobs": [],
    "skipped": [],
}


def test_it_explains_the_run_and_lays_out_jobs_by_stage(public, make_run, runner, client):
    run = make_run(
        [job_spec("build"), job_spec("test", needs=["build"]), job_spec("lint")],
        trigger="pull_request",
        pr_number=7,
        base_sha="b" * 40,
        is_fork=True,
    )
    Job.objects.create(
        run=run,
        name="docs",
        position=9,
        state="SKIPPED",
        required=False,
        reason_code="NOT_AFFECTED",
        reason="no file of docs changed",
    )
    Run.objects.filter(pk=run.pk).update(plan={**run.plan, **PLAN}, started_by="user:mia")
    run_attempt(runner, status="FAILED", exit_code=3)  # build fails: test is skipped
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert f"Run #{run.pk}" in html and "pull request" in html and "PR #7" in html
    assert SHA[:12] in html and "from a fork" in html
    assert f'<code title="{"c" * 40}">{"c" * 12}</code>' in html  # the base the plan used
    assert "user:mia" in html
    assert PLAN["explain"] in html and "fallback" in html
    assert "planned in full: diff unavailable: first push of a branch" in html
    assert "web/&lt;b&gt;index&lt;/b&gt;.js" in html  # changed paths are escaped
    stage1, stage2 = html.split("stage 1", 1)[1].split("stage 2", 1)
    assert "build" in stage1 and "lint" in stage1 and '"job-name">test<' in stage2
    assert "exit 3" in html and "on r1" in html
    assert "skipped because build did not succeed" in html
    assert 'title="NOT_AFFECTED">not affected<' in html and "no file of docs changed" in html


def test_it_shows_the_planning_error_of_a_plan_failed_run(public, client):
    run = Run.objects.create(
        repository=public, trigger="push", event_key="k", ref="refs/heads/main", commit_sha=SHA
    )
    states.transition(states.RUN, run, RunState.PLANNING, actor="system")
    states.transition(
        states.RUN,
        run,
        RunState.PLAN_FAILED,
        plan_error="ci.ai.yaml: jobs.x.image: <not> allowed",
        actor="system",
    )
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert "Planning failed" in html
    assert "jobs.x.image: &lt;not&gt; allowed" in html
    assert "PLAN_FAILED" in html


def test_it_shows_the_github_report_status_and_error(public, make_run, client):
    run = make_run()
    Run.objects.filter(pk=run.pk).update(report_status="error", report_error="HTTP 502 <html>")
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert "GitHub report" in html and "HTTP 502 &lt;html&gt;" in html


def test_it_cancels_a_run_for_a_member(make_run, member, clients):
    run = make_run()
    page = clients["member"].get(f"/runs/{run.pk}").content.decode()
    assert "Cancel run" in page and "Rerun" not in page  # not finished: nothing to rerun
    r = clients["member"].post(f"/runs/{run.pk}/cancel", follow=True)
    assert r.redirect_chain[-1][0] == f"/runs/{run.pk}"
    run.refresh_from_db()
    assert run.state in ("CANCEL_REQUESTED", "CANCELED")
    assert AuditEvent.objects.filter(action="run.cancel", actor="user:mia", run=run).exists()
    assert b"Cancellation of run" in r.content


def test_it_reruns_all_or_only_failed_jobs_once_per_form(make_run, member, runner, clients):
    run = make_run([job_spec("a"), job_spec("b")])
    run_attempt(runner, status="FAILED", exit_code=1)
    run_attempt(runner)
    run.refresh_from_db()
    assert run.state == "FAILED"
    c = clients["member"]
    nonce = c.get(f"/runs/{run.pk}").context["nonce"]
    r = c.post(f"/runs/{run.pk}/rerun", {"scope": "failed", "nonce": nonce})
    new = Run.objects.get(rerun_of=run)
    assert r.status_code == 302 and r["Location"] == f"/runs/{new.pk}"
    assert new.rerun_scope == "failed" and new.trigger == "rerun" and new.attempt == 2
    c.post(f"/runs/{run.pk}/rerun", {"scope": "failed", "nonce": nonce})  # double click
    assert run.reruns.count() == 1
    c.post(f"/runs/{run.pk}/rerun", {"scope": "all", "nonce": nonce})
    assert set(run.reruns.values_list("rerun_scope", flat=True)) == {"failed", "all"}
    assert AuditEvent.objects.filter(action="run.rerun", actor="user:mia").count() == 2


def test_it_refuses_a_bad_rerun_request_clearly(make_run, member, clients):
    run = make_run()
    c = clients["member"]
    assert c.post(f"/runs/{run.pk}/rerun", {"scope": "<everything>"}).status_code == 400
    r = c.post(f"/runs/{run.pk}/rerun", {"scope": "all", "nonce": "x" * 5000}, follow=True)
    assert b"only a finished run can be rerun" in r.content
    assert run.reruns.count() == 0
    assert c.get(f"/runs/{run.pk}/rerun").status_code == 405
    assert c.get(f"/runs/{run.pk}/cancel").status_code == 405
