"""JUnit XML reports: parsed with defusedxml into per-test results, size-bounded; hostile
or malformed reports are rejected cleanly and recorded as a parse error."""

import pytest

from apps.artifacts import junit, storage
from apps.artifacts.models import Artifact, TestReport, TestResult
from apps.artifacts.tasks import finalize_log
from apps.artifacts.testreports import ReportRejected, parse, parse_attempt_reports
from tests.conftest import job_spec
from tests.pages.factory import JUNIT_FAIL, JUNIT_PASS, run_attempt

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<testsuite><testcase name="&lol3;"/></testsuite>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<testsuite><testcase name="&xxe;"/></testsuite>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/evil.dtd">
<testsuite><testcase name="a"/></testsuite>"""


def test_it_parses_suites_cases_statuses_durations_and_messages():
    cases = parse(JUNIT_FAIL).cases
    assert [(c.suite, c.classname, c.name, c.status) for c in cases] == [
        ("pkg.tests", "pkg.tests.test_math", "test_adds", "passed"),
        ("pkg.tests", "pkg.tests.test_math", "test_divides", "failed"),
        ("pkg.tests", "pkg.tests.test_math", "test_later", "skipped"),
    ]
    assert cases[0].duration == 0.01
    assert cases[1].message.startswith("assert 1 == 2\ndef test_divides():\n>       assert")


def test_it_reads_a_bare_testsuite_nested_suites_and_errors():
    doc = b"""<testsuite name="outer"><testsuite name="inner">
      <testcase name="boom" time="NaN"><error type="RuntimeError">trace</error></testcase>
      </testsuite><testcase name="top" time="-3"/><properties><property name="x"/></properties>
      <system-out>noise</system-out></testsuite>"""
    cases = parse(doc).cases
    assert [(c.suite, c.name, c.status, c.duration) for c in cases] == [
        ("inner", "boom", "error", None),
        ("outer", "top", "passed", None),
    ]
    assert cases[0].message == "RuntimeError\ntrace"


@pytest.mark.parametrize(
    "doc, why",
    [
        (BILLION_LAUGHS, "forbidden XML construct"),
        (XXE, "forbidden XML construct"),
        (EXTERNAL_DTD, "forbidden XML construct"),
        (b"<testsuite><testcase name='a'>", "not well-formed"),
        (b"", "not well-formed"),
        (b"\xff\xfe garbage", "not well-formed"),
        (b"<html><body>not junit</body></html>", "root element is <html>"),
        (b"<a>" * 40 + b"</a>" * 40, "root element is <a>"),
    ],
)
def test_it_rejects_hostile_and_malformed_documents(doc, why):
    with pytest.raises(ReportRejected, match=why):
        parse(doc)


def test_it_bounds_nesting_case_count_and_text(monkeypatch):
    deep = b"<testsuite>" * 40 + b"<testcase name='x'/>" + b"</testsuite>" * 40
    with pytest.raises(ReportRejected, match="nested deeper"):
        parse(deep)
    monkeypatch.setattr(junit, "MAX_CASES", 5)
    many = b"<testsuite>" + b"".join(b"<testcase name='t%d'/>" % i for i in range(50))
    parsed = parse(many + b"</testsuite>")
    assert len(parsed.cases) == 5 and parsed.truncated and parsed.seen == 50
    long = b"<testsuite><testcase name='" + b"n" * 999 + b"'><failure>"
    long += b"m" * 10_000 + b"</failure></testcase></testsuite>"
    case = parse(long).cases[0]
    assert len(case.name) == 255 and len(case.message) == 4000 and case.message.endswith("…")


def test_it_records_results_once_per_artifact(public, make_run, runner, artifact_store):
    make_run()
    g = run_attempt(runner, status="FAILED", exit_code=1, junit=JUNIT_FAIL)
    aid = int(g["attempt_id"])
    report = TestReport.objects.get(attempt_id=aid)
    assert report.error == "" and report.total == 3
    rows = TestResult.objects.filter(attempt_id=aid).order_by("id")
    assert [r.status for r in rows] == ["passed", "failed", "skipped"]
    assert rows[1].run_id == report.attempt.run_id and rows[1].job_id == report.attempt.job_id
    finalize_log(aid)  # the task again: nothing more
    assert parse_attempt_reports(aid) == []
    assert TestResult.objects.filter(attempt_id=aid).count() == 3


def test_it_records_a_hostile_report_as_a_parse_error_and_shows_it(
    public, make_run, runner, artifact_store, client
):
    run = make_run()
    g = run_attempt(runner, status="FAILED", exit_code=1, junit=BILLION_LAUGHS)
    report = TestReport.objects.get(attempt_id=g["attempt_id"])
    assert "forbidden XML construct" in report.error
    assert not TestResult.objects.exists()
    html = client.get(f"/runs/{run.pk}").content.decode()
    assert "Report <code>junit.xml</code> was not read: forbidden XML construct" in html


def test_it_records_a_missing_object_as_a_parse_error(public, make_run, runner, artifact_store):
    make_run()
    g = run_attempt(runner, junit=None)
    art = Artifact.objects.create(
        attempt_id=g["attempt_id"],
        name="gone.xml",
        artifact_type="junit",
        key="nowhere/gone.xml",
        recorded=True,
    )
    assert storage.size_of(art.key) is None
    [report] = parse_attempt_reports(int(g["attempt_id"]))
    assert "could not be read" in report.error


def test_it_skips_unrecorded_artifacts(public, make_run, runner, artifact_store):
    make_run()
    g = run_attempt(runner, junit=JUNIT_PASS)
    aid = int(g["attempt_id"])
    art = Artifact.objects.create(
        attempt_id=aid, name="x.xml", artifact_type="junit", key="k/x.xml", recorded=False
    )
    storage.save("k/x.xml", JUNIT_FAIL)
    assert parse_attempt_reports(aid) == []
    Artifact.objects.filter(pk=art.pk).update(recorded=True)
    [report] = parse_attempt_reports(aid)
    assert report.error == "" and report.total == 3


def test_it_totals_final_attempts_and_marks_a_retried_pass_flaky(
    public, make_run, runner, artifact_store, client
):
    run = make_run([job_spec("test", retries=1), job_spec("other", allow_failure=True)])
    tooling = b"sh: pytest-xdist: command not found\n"  # retryable: the job is retried
    assert (
        run_attempt(runner, status="FAILED", exit_code=1, junit=JUNIT_FAIL, log=tooling)[
            "job_spec"
        ]["name"]
        == "test"
    )

    def tests_section() -> str:
        html = client.get(f"/runs/{run.pk}").content.decode()
        return html.split('id="tests"', 1)[1].split("</section>", 1)[0]

    section = tests_section()
    assert "1 failed" in section and "flaky" not in section
    g = run_attempt(runner, status="FAILED", exit_code=1, junit=JUNIT_FAIL)
    assert g["job_spec"]["name"] == "other"  # fails test_divides for real
    g = run_attempt(runner, junit=JUNIT_PASS)
    assert (g["job_spec"]["name"], g["attempt_number"]) == ("test", 2)
    run.refresh_from_db()
    assert run.state == "SUCCESS"
    section = tests_section()
    assert "3 passed" in section and "1 failed" in section and "2 skipped" in section
    assert "1 flaky" in section and "of 6" in section
    assert section.count("<strong>pkg.tests.test_math.test_divides</strong>") == 2
    flaky = section.split('class="test flaky"')[1]
    failed = section.split('class="test failed"')[1].split('class="test flaky"')[0]
    assert "in test, attempt 1" in flaky and "in other, attempt 1" in failed


def test_a_store_outage_is_retried_not_recorded(
    public, make_run, runner, artifact_store, monkeypatch
):
    make_run()
    g = run_attempt(runner, junit=None)
    Artifact.objects.create(
        attempt_id=g["attempt_id"],
        name="r.xml",
        artifact_type="junit",
        key="k/r.xml",
        recorded=True,
    )

    def down(key):
        raise ConnectionResetError("store down")

    monkeypatch.setattr(storage, "open_for_read", down)
    with pytest.raises(OSError):
        parse_attempt_reports(int(g["attempt_id"]))
    assert not TestReport.objects.exists()
    monkeypatch.undo()
    storage.save("k/r.xml", JUNIT_PASS)
    [report] = parse_attempt_reports(int(g["attempt_id"]))
    assert report.error == "" and report.total == 3
