"""What the run page shows of a report beyond pass/fail: truncation as "N of M", totals of
suites without test cases, reruns inside a report, and the slowest tests."""

from apps.artifacts import junit
from apps.artifacts.models import TestReport, TestResult
from tests.pages.factory import run_attempt
from tests.reports.test_fidelity import make_report, sample


def section_of(client, run) -> str:
    html = client.get(f"/runs/{run.pk}").content.decode()
    return html.split('id="tests"', 1)[1].split("</section>", 1)[0]


def test_it_says_how_much_of_a_truncated_report_was_kept(
    public, make_run, runner, artifact_store, client, monkeypatch
):
    monkeypatch.setattr(junit, "MAX_CASES", 40)
    run = make_run()
    run_attempt(runner, status="FAILED", exit_code=1, junit=make_report(500))
    report = TestReport.objects.get()
    assert (report.total, report.seen, report.truncated) == (40, 500, True)
    section = section_of(client, run)
    assert "Report <code>junit.xml</code> truncated: 40 of 500 tests kept." in section
    assert "4 failed" in section and "36 passed" in section


def test_it_counts_suite_totals_shows_reruns_and_the_slowest_tests(
    public, make_run, runner, artifact_store, client
):
    run = make_run()
    doc = sample("gotestsum-rerun-fails.xml").replace(
        b"</testsuites>",
        b'<testsuite name="example.com/other" tests="7" failures="2" skipped="1"/></testsuites>',
    )
    run_attempt(runner, status="FAILED", exit_code=1, junit=doc)
    retry = TestResult.objects.get(name="TestRetry")
    assert (retry.status, retry.flaky, retry.tries) == ("passed", True, 2)
    section = section_of(client, run)
    assert "5 passed" in section and "3 failed" in section and "1 skipped" in section
    assert "7 of these are counted from suite totals" in section
    assert "1 flaky" in section and "2 tries" in section
    slowest = section.split('id="slowest-tests"', 1)[1]
    assert "reports took 1.20 s" in slowest
    assert slowest.index("TestRetry") < slowest.index("TestBroken")
