"""JUnit producers' conventions, read as a person would: skips, suite errors, reruns and
flaky tries, every message, output when a failure says nothing, suite totals, durations,
bad characters and streamed over-size reports."""

import io
from pathlib import Path

import pytest

from apps.artifacts import junit
from apps.artifacts.junit import ReportRejected, parse

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


GTEST = sample("googletest.xml")

CTEST = sample("ctest.xml")

SUREFIRE_CLASS_ERROR = sample("surefire-class-error.xml")

SUREFIRE_RERUNS = sample("surefire-reruns.xml")

GOTESTSUM_RERUN = sample("gotestsum-rerun-fails.xml")


def by_name(parsed: junit.Parsed) -> dict[str, junit.Case]:
    return {c.name: c for c in parsed.cases}


def test_googletest_notrun_and_skipped_results_are_skips_and_every_failure_is_kept():
    cases = by_name(parse(GTEST))
    assert {n: c.status for n, c in cases.items()} == {
        "Adds": "passed",
        "DISABLED_Divides": "skipped",
        "Skips": "skipped",
        "Multiplies": "failed",
    }
    assert cases["Skips"].message == "/src/math_test.cc:17\nneeds a GPU"
    message = cases["Multiplies"].message
    assert "Which is: 6" in message and "Value of: ok" in message


def test_ctest_disabled_is_skipped_and_output_explains_an_empty_failure():
    parsed = parse(CTEST)
    cases = by_name(parsed)
    assert [c.status for c in parsed.cases] == ["passed", "failed", "skipped", "skipped"]
    assert "check_roundtrip: FAILED at roundtrip.c:41" in cases["integration"].message
    assert cases["gpu"].message == "Disabled"
    assert parsed.duration == 3.0 and cases["integration"].duration == 2.11


def test_an_error_directly_under_a_suite_is_an_error_of_that_suite_never_zero_tests():
    parsed = parse(SUREFIRE_CLASS_ERROR)
    [case] = parsed.cases
    assert (case.classname, case.name, case.status) == (
        "com.example.BrokenTest",
        "(suite)",
        "error",
    )
    assert case.message.startswith("Could not initialize class com.example.Config\n")
    assert "BrokenTest.java:12" in case.message
    assert parsed.suite_totals == {}  # its tests="1" is this error, not one more test


def test_surefire_flaky_and_rerun_tries_give_the_last_outcome():
    cases = by_name(parse(SUREFIRE_RERUNS))
    connects, parses, closes = cases["connects"], cases["parses"], cases["closes"]
    assert (connects.status, connects.flaky, connects.tries) == ("passed", True, 2)
    assert connects.message.startswith("flaky failure: expected: <200> but was: <503>")
    assert "NetTest.java:31" in connects.message and "attempt 1" not in connects.message
    assert (parses.status, parses.flaky, parses.tries) == ("error", False, 3)
    assert "NetTest.java:44" in parses.message
    assert "rerun error: Connection refused" in parses.message
    assert (closes.status, closes.flaky, closes.tries) == ("passed", False, 1)


def test_a_test_repeated_in_one_report_is_one_test_with_the_last_outcome():
    parsed = parse(GOTESTSUM_RERUN)
    cases = by_name(parsed)
    assert parsed.seen == 2 and len(parsed.cases) == 2
    retry, broken = cases["TestRetry"], cases["TestBroken"]
    assert (retry.status, retry.flaky, retry.tries, retry.duration) == ("passed", True, 2, 0.09)
    assert "timeout waiting for leader" in retry.message
    assert (broken.status, broken.flaky, broken.tries) == ("failed", False, 2)
    assert broken.message.count("nil map") == 1  # the same message is kept once


def test_pytest_rerunfailures_and_web_test_runner_repeats():
    doc = sample("pytest-rerunfailures.xml")
    upload = by_name(parse(doc))["test_upload"]
    assert (upload.status, upload.flaky, upload.tries) == ("passed", True, 2)
    wtr = sample("web-test-runner-retries.xml")
    renders = parse(wtr).cases[0]
    assert (renders.status, renders.flaky, renders.tries) == ("passed", True, 3)


def test_suites_with_totals_and_no_test_cases_count_their_totals_once():
    doc = b"""<testsuites tests="9">
  <testsuite name="a" tests="5" failures="1" errors="1" skipped="1"/>
  <testsuite name="outer" tests="4">
    <testsuite name="inner" tests="4" skipped="4"></testsuite>
  </testsuite>
  <testsuite name="b" tests="2"><testcase name="x"/><testcase name="y"/></testsuite>
  <testsuite name="junk" tests="lots" failures="-3"/>
</testsuites>"""
    parsed = parse(doc)
    assert parsed.suite_totals == {"failed": 1, "error": 1, "skipped": 5, "passed": 2}
    assert [c.name for c in parsed.cases] == ["x", "y"]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0.25", 0.25),
        ("1,234.5", 1234.5),
        ("12", 12.0),
        ("", None),
        ("-1", None),
        ("NaN", None),
        ("inf", None),
        ("1e12", None),
        ("604801", None),
        ("abc", None),
        ("1,2", None),
    ],
)
def test_durations_are_read_and_absurd_ones_rejected(value, seconds):
    doc = b'<testsuite time="%s"><testcase name="t" time="%s"/></testsuite>' % (
        value.encode(),
        value.encode(),
    )
    parsed = parse(doc)
    assert parsed.cases[0].duration == seconds and parsed.duration == seconds


def test_top_level_suite_times_add_up_when_the_root_has_none():
    doc = b'<testsuites><testsuite time="1.5"/><testsuite time="2"/><testsuite time="x"/>'
    doc += b"</testsuites>"
    assert parse(doc).duration == 3.5


def test_a_bad_character_costs_only_itself():
    doc = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="s\x01">'
        b'<testcase classname="c" name="t\x1b[31mred\x1b[0m">'
        b'<failure message="bad &#27;[1m &#x1; ok">'
        b"\x1b[31mAssertionError\x1b[0m: caf\xc3\xa9 \xff\xfe byte\x00 &#0; end\x0c"
        b"</failure></testcase>"
        b'<testcase name="after"/></testsuite>'
    )
    parsed = parse(doc)
    first, second = parsed.cases
    assert first.suite == "s" and first.name == "tred"
    assert first.message == "bad [1m  ok\nAssertionError: café \ufffd\ufffd byte  end"
    assert second.name == "after" and second.status == "passed"


def test_a_declared_latin1_report_is_read_in_its_encoding():
    doc = '<?xml version="1.0" encoding="ISO-8859-1"?><testsuite><testcase name="é"/></testsuite>'
    assert parse(doc.encode("latin-1")).cases[0].name == "é"
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><testsuite><testcase name="ü"/></testsuite>'
    assert parse(utf16.encode("utf-16")).cases[0].name == "ü"


def test_it_reads_the_same_whatever_the_chunk_boundaries(monkeypatch):
    doc = GTEST + b"<!-- \x1b[1m &#27; -->"
    whole = parse(doc)
    monkeypatch.setattr(junit, "CHUNK_BYTES", 7)
    assert parse(io.BytesIO(doc)) == whole
    dirty = b'<testsuite><testcase name="a&#27;b\x1b[1mc"/></testsuite>'
    for size in range(1, 12):
        monkeypatch.setattr(junit, "CHUNK_BYTES", size)
        assert parse(io.BytesIO(dirty)).cases[0].name == "abc", size


def make_report(cases: int, *, failing_every: int = 10) -> bytes:
    rows = [b'<?xml version="1.0"?>\n<testsuites tests="%d">\n<testsuite name="big">\n' % cases]
    for i in range(cases):
        if i % failing_every == 0:
            rows.append(
                b'<testcase classname="pkg.Big" name="test_%d" time="0.01">'
                b'<failure message="boom">trace</failure></testcase>\n' % i
            )
        else:
            rows.append(b'<testcase classname="pkg.Big" name="test_%d" time="0.01"/>\n' % i)
    rows.append(b"</testsuite>\n</testsuites>\n")
    return b"".join(rows)


def test_an_over_size_report_is_streamed_up_to_the_case_cap_and_counted(monkeypatch):
    monkeypatch.setattr(junit, "MAX_CASES", 100)
    parsed = parse(io.BytesIO(make_report(1000)))
    assert len(parsed.cases) == 100 and parsed.seen == 1000 and parsed.truncated
    assert parsed.cases[-1].name == "test_99"


def test_reading_stops_at_the_scan_limit_and_trusts_the_declared_count(monkeypatch):
    doc = make_report(1000)
    parsed = parse(io.BytesIO(doc), scan_limit=len(doc) // 2)
    assert parsed.truncated and 400 < len(parsed.cases) < 600 and parsed.seen == 1000


@pytest.mark.parametrize(
    "doc",
    [
        b"<!DOCTYPE t [<!ENTITY a 'x'>]><testsuite/>",
        b'<?xml version="1.0"?><!DOCTYPE t SYSTEM "file:///etc/passwd"><testsuite/>',
    ],
)
def test_entity_and_dtd_protections_hold_when_streaming(doc, monkeypatch):
    monkeypatch.setattr(junit, "CHUNK_BYTES", 5)
    with pytest.raises(ReportRejected, match="forbidden XML construct"):
        parse(io.BytesIO(doc))


def test_hostile_text_is_bounded_while_streaming():
    huge = b"<testsuite><testcase name='t'><failure>" + b"x" * 3_000_000 + b"</failure>"
    huge += b"<system-out>" + b"y" * 3_000_000 + b"</system-out></testcase></testsuite>"
    [case] = parse(io.BytesIO(huge)).cases
    assert len(case.message) == junit.MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    ("attrs", "status"),
    [
        (b'status="notrun"', "skipped"),  # googletest before 1.10: no result attribute
        (b'status="disabled"', "skipped"),
        (b'status="run" result="suppressed"', "skipped"),
        (b'status="fail"', "failed"),
        (b'status="run" result="completed"', "passed"),
        (b'status="weird"', "passed"),
    ],
)
def test_a_producers_status_attribute_alone_decides(attrs, status):
    doc = b'<testsuite><testcase classname="c" name="t" %s time="0"/></testsuite>' % attrs
    assert parse(doc).cases[0].status == status
