"""Tests over history: flaky on a commit across reruns, each failure marked *new* or
*already failing on the base branch*, and the repository's test page (last results,
duration trend, flaky rate) in a fixed number of queries."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.artifacts.models import TestResult
from tests.conftest import job_spec
from tests.pages.factory import run_attempt

C1, C2, C3 = "1" * 40, "2" * 40, "3" * 40


def junit(outcomes: dict[str, str], time: float = 0.1) -> bytes:
    rows = []
    for name, outcome in outcomes.items():
        body = '<failure message="boom">trace</failure>' if outcome == "fail" else ""
        rows.append(f'<testcase classname="pkg.T" name="{name}" time="{time}">{body}</testcase>')
    return f'<testsuite name="pkg">{"".join(rows)}</testsuite>'.encode()


def run_with(make_run, runner, outcomes: dict[str, str], time: float = 0.1, **fields):
    run = make_run([job_spec("unit:test")], **fields)
    failed = "fail" in outcomes.values()
    run_attempt(
        runner,
        status="FAILED" if failed else "SUCCEEDED",
        exit_code=1 if failed else 0,
        log=b"=== 1 failed in 0.1s ===\n" if failed else b"ok\n",
        junit=junit(outcomes, time),
    )
    return run


def section_of(client, run) -> str:
    html = client.get(f"/runs/{run.pk}").content.decode()
    return html.split('id="tests"', 1)[1].split("</section>", 1)[0]


def failing_entry(section: str, name: str) -> str:
    return section.split(f"<strong>pkg.T.{name}</strong>", 1)[1].split("</li>", 1)[0]


def test_a_test_that_failed_and_passed_on_the_same_commit_is_flaky(
    public, make_run, runner, artifact_store, client
):
    first = run_with(make_run, runner, {"a": "pass", "b": "fail"}, commit_sha=C1)
    section = section_of(client, first)
    assert 'class="test failed"' in section and "flaky" not in section
    rerun = run_with(make_run, runner, {"a": "pass", "b": "pass"}, commit_sha=C1)
    section = section_of(client, first)
    assert 'class="test flaky"' in section and "1 flaky" in section
    assert "1 flaky" in section_of(client, rerun)
    other = run_with(make_run, runner, {"a": "pass", "b": "fail"}, commit_sha=C2)
    section = section_of(client, other)  # passing on another commit is not flakiness
    assert 'class="test failed"' in section and "flaky" not in section


def test_failures_are_marked_new_or_already_failing_on_the_base_branch(
    public, make_run, runner, artifact_store, client
):
    pr = {"ref": "refs/pull/7/head", "pr_number": 7}
    lone = run_with(make_run, runner, {"old": "fail"}, commit_sha=C3, base_sha=C1, **pr)
    assert "failing on the base" not in section_of(client, lone)  # no base results: no marks
    assert ">new<" not in section_of(client, lone)
    base = run_with(make_run, runner, {"old": "fail", "x": "pass"}, commit_sha=C1)
    head = run_with(
        make_run,
        runner,
        {"old": "fail", "x": "fail", "fresh": "fail"},
        commit_sha=C2,
        base_sha=C1,
        **pr,
    )
    section = section_of(client, head)
    assert "already failing on the base branch" in failing_entry(section, "old")
    assert f'href="/runs/{base.pk}"' in failing_entry(section, "old")
    assert ">new<" in failing_entry(section, "x") and ">new<" in failing_entry(section, "fresh")
    assert f'compared with <a href="/runs/{base.pk}">run #{base.pk}</a>' in section
    # without a run of its base commit, the newest default-branch run before it is the base
    later = run_with(
        make_run, runner, {"old": "pass", "x": "fail"}, commit_sha=C3, base_sha="f" * 40, **pr
    )
    section = section_of(client, later)
    assert ">new<" in failing_entry(section, "x")  # it passed on that base
    assert f"run #{base.pk}</a> on the base branch" in section


def test_the_repository_test_page_shows_results_trend_and_flaky_rate(
    public, make_run, runner, artifact_store, client
):
    run_with(make_run, runner, {"steady": "pass", "wobbly": "fail"}, 0.1, commit_sha=C1)
    run_with(make_run, runner, {"steady": "pass", "wobbly": "pass"}, 0.3, commit_sha=C1)
    run_with(make_run, runner, {"steady": "pass", "wobbly": "pass"}, 0.2, commit_sha=C2)
    home = client.get("/").content.decode()
    assert 'href="/repos/demo/tests"' in home
    html = client.get("/repos/demo/tests").content.decode()
    assert "2 tests in the newest 3 runs" in html
    wobbly = html.split("<strong>pkg.T.wobbly</strong>", 1)[1].split("</tr>", 1)[0]
    steady = html.split("<strong>pkg.T.steady</strong>", 1)[1].split("</tr>", 1)[0]
    assert html.index("pkg.T.wobbly") < html.index("pkg.T.steady")  # most flaky first
    assert "50%" in wobbly and 'title="1 of 2 commits"' in wobbly
    assert "1 <span" in wobbly and "of 3</span>" in wobbly  # one failure of three results
    assert wobbly.count("✓") == 2 and wobbly.count("✗") == 1 and "<polyline" in wobbly
    assert "0%" in steady and "0.200 s" in steady
    assert "unit:test" in steady
    row = TestResult.objects.filter(name="wobbly").order_by("id").first()
    assert f'href="/runs/{row.run_id}"' in wobbly
    filtered = client.get("/repos/demo/tests?q=stead").content.decode()
    assert "pkg.T.steady" in filtered and "pkg.T.wobbly" not in filtered


def test_the_test_page_refuses_nothing_odd_and_hides_private_repositories(
    repo, make_run, runner, artifact_store, clients
):
    run_with(make_run, runner, {"a": "pass"}, commit_sha=C1)
    assert clients["outsider"].get("/repos/demo/tests").status_code == 404
    assert clients["anonymous"].get("/repos/demo/tests").status_code == 404
    assert clients["outsider"].get("/repos/nope/tests").status_code == 404
    c = clients["member"]
    for query in (
        "page=abc",
        "page=-1",
        "page=99999999999",
        "page=0",
        "q=" + "x" * 5000,
        "q=%00%27%22<script>",
        "page=2&q=a",
    ):
        r = c.get(f"/repos/demo/tests?{query}")
        assert r.status_code == 200, query
        assert b"<script>" not in r.content
    assert c.post("/repos/demo/tests").status_code == 405


def test_the_test_page_takes_a_fixed_number_of_queries(
    public, make_run, runner, artifact_store, client
):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/repos/demo/tests").status_code == 200
        return len(ctx.captured_queries)

    run_with(make_run, runner, {"a": "pass", "b": "fail"}, commit_sha=C1)
    small = count()
    for i in range(6):
        outcomes = {f"t{j}": "fail" if (i + j) % 3 == 0 else "pass" for j in range(60)}
        run_with(make_run, runner, outcomes, commit_sha=C2 if i % 2 else C3)
    big = count()
    assert big == small <= 6, (small, big)
    assert "page 1 of 2" in client.get("/repos/demo/tests").content.decode()
    assert "page 2 of 2" in client.get("/repos/demo/tests?page=2").content.decode()


def test_the_run_page_marks_failures_in_a_fixed_number_of_queries(
    public, make_run, runner, artifact_store, client
):
    def count(run) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/runs/{run.pk}").status_code == 200
        return len(ctx.captured_queries)

    pr = {"ref": "refs/pull/3/head", "pr_number": 3, "base_sha": C1}
    run_with(make_run, runner, {"a": "fail", "b": "pass"}, commit_sha=C1)
    small = run_with(make_run, runner, {"a": "fail", "b": "fail"}, commit_sha=C2, **pr)
    for _ in range(4):
        run_with(make_run, runner, {f"t{j}": "fail" for j in range(80)}, commit_sha=C1)
    big = run_with(make_run, runner, {f"t{j}": "fail" for j in range(80)}, commit_sha=C3, **pr)
    assert "already failing on the base branch" in section_of(client, big)
    assert count(big) == count(small)
