"""Text that is right: the outcome names only the jobs that failed, a failed-only rerun's
explanation counts what runs again, codes read as plain words with the code on hover."""

from apps.runs.models import Run
from apps.runs.planning import failed_only_plan
from tests.conftest import job_spec
from tests.pages.factory import run_attempt


def test_the_outcome_names_failed_jobs_and_only_counts_skipped_ones(
    public, make_run, runner, artifact_store, client
):
    run = make_run([job_spec("build"), job_spec("test", needs=["build"]), job_spec("pkg")])
    run_attempt(runner, status="FAILED", exit_code=1)  # build
    run_attempt(runner)  # pkg
    run = Run.objects.get(pk=run.pk)
    assert run.state == "FAILED"
    assert run.reason == (
        "required job(s) failed: build; 1 required job(s) skipped because a job they need failed"
    )
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert 'title="NEED_FAILED">a job it needs failed<' in html


def test_a_failed_only_rerun_explains_what_runs_again(public, make_run, runner, artifact_store):
    run = make_run(
        [job_spec("build"), job_spec("test", needs=["build"]), job_spec("lint"), job_spec("doc")]
    )
    run_attempt(runner)  # build
    run_attempt(runner, status="FAILED", exit_code=1)  # lint
    run_attempt(runner)  # doc
    run_attempt(runner)  # test
    plan = failed_only_plan(Run.objects.get(pk=run.pk))
    assert [j["name"] for j in plan["jobs"]] == ["lint"]
    assert plan["explain"] == (
        f"Failed-only rerun of run {run.pk}: 1 job(s) run again (1 that did not succeed "
        "there, 0 that need them); 3 that succeeded there are not rerun."
    )


def test_cancel_reasons_read_as_words(public, make_run, client):
    run = make_run()
    Run.objects.filter(pk=run.pk).update(state="CANCELED", cancel_reason="SUPERSEDED")
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert '<span class="code" title="SUPERSEDED">superseded by a newer run</span>' in html
