"""What people look for: commit message and author, links to GitHub (commit, pull
request, compare) or to the repository, queue and run time per job ("<1s", never "0s"),
the run's artifacts in one list, links between a rerun and its origin, declared names."""

from datetime import timedelta

from django.utils import timezone

from apps.runs.actions import do_rerun_run
from apps.runs.models import Job, JobAttempt, Run
from lib import gitmirror
from tests.conftest import job_spec
from tests.gitrepo import GitRepo
from tests.pages.factory import run_attempt


def test_it_reads_a_commits_author_and_message(tmp_path):
    repo = GitRepo(tmp_path / "r")
    sha = repo.commit({"a": "1"}, message="-rf Fix <b>bold</b> ünïcode\n\nLonger body.")
    assert gitmirror.commit_summary(repo.path, sha) == {
        "author": "t",
        "subject": "-rf Fix <b>bold</b> ünïcode",
        "body": "Longer body.",
    }
    assert gitmirror.commit_summary(repo.path, "--output=/tmp/x") == {}
    assert gitmirror.commit_summary(repo.path, "b" * 40) == {}  # not in the repository


def test_it_shows_the_commit_and_links_to_github(public, make_run, client, settings):
    public.github_full_name = "acme/app"
    public.save()
    run = make_run(pr_number=7, trigger="pull_request", started_by="alice")
    Run.objects.filter(pk=run.pk).update(
        plan={
            "jobs": [],
            "base_sha": "b" * 40,
            "commit": {"author": "Alice", "subject": "Fix <b>it</b>", "body": "why"},
        }
    )
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert "Fix &lt;b&gt;it&lt;/b&gt;" in html and "<dd>Alice</dd>" in html
    assert "pull request by alice" in html
    web = "https://github.com/acme/app"
    assert f'href="{web}/commit/{run.commit_sha}"' in html
    assert f'href="{web}/pull/7"' in html
    assert f'href="{web}/compare/{"b" * 40}...{run.commit_sha}"' in html
    settings.GITHUB_API_URL = "https://ghe.example.test/api/v3"
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert 'href="https://ghe.example.test/acme/app/pull/7"' in html


def test_it_links_the_repository_url_only_when_it_is_a_web_address(public, make_run, client):
    run = make_run()
    assert "in <a href" not in client.get(f"/runs/{run.pk}").content.decode()  # a local path
    public.url = "https://git.example.test/demo.git"
    public.save()
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert 'in <a href="https://git.example.test/demo.git">demo</a>' in html
    public.url = "javascript:alert(1)"
    public.save()
    assert "javascript:" not in client.get(f"/runs/{run.pk}").content.decode()


def test_it_shows_queue_and_run_time_and_sub_second_durations(public, make_run, client):
    spec = {**job_spec("unit"), "title": "Unit tests"}
    run = make_run([spec])
    now = timezone.now()
    JobAttempt.objects.filter(run=run).update(
        queued_at=now - timedelta(seconds=75), started_at=now - timedelta(seconds=3)
    )
    Job.objects.filter(run=run).update(
        started_at=now - timedelta(seconds=3), finished_at=now - timedelta(seconds=2.6)
    )
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert '<span title="waiting for a runner">queued 1m 12s</span>' in html
    assert '<span title="running">&lt;1s</span>' in html
    assert 'Unit tests</strong> <span class="muted">unit</span>' in html


def test_it_lists_the_runs_artifacts_and_links_reruns_both_ways(
    public, make_run, runner, artifact_store, client
):
    run = make_run([job_spec("a"), job_spec("b")])
    run_attempt(runner, status="FAILED", exit_code=1, files={"dist.tar": b"x" * 10})
    run_attempt(runner, files={"report.html": b"<p>"})
    run = Run.objects.get(pk=run.pk)
    html = client.get(f"/runs/{run.pk}").content.decode()
    listing = html.split('id="artifacts"', 1)[1].split("</section>", 1)[0]
    assert "dist.tar" in listing and "report.html" in listing and "log.txt" not in listing
    new, _ = do_rerun_run(run, failed_only=True, actor="t")
    assert (
        f'href="/runs/{new.pk}">run #{new.pk}</a>' in client.get(f"/runs/{run.pk}").content.decode()
    )
    back = client.get(f"/runs/{new.pk}").content.decode()
    assert f'rerun of <a href="/runs/{run.pk}">run #{run.pk}</a>' in back


def test_the_runs_list_shows_sub_second_runs_as_under_a_second(public, make_run, client):
    run = make_run()
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        started_at=now - timedelta(seconds=0.4), finished_at=now, state="SUCCESS"
    )
    html = client.get("/runs").content.decode()
    assert "<td>&lt;1s</td>" in html and "0 minutes" not in html
