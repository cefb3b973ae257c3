"""The deterministic failure classifier: infrastructure, tooling, user (by job kind)."""

import pytest

from apps.runs.failures import classify


@pytest.mark.parametrize(
    ("status", "exit_code", "log", "job", "expected"),
    [
        ("FAILED", 1, b"cc1: No space left on device", "build", "infrastructure"),
        ("FAILED", 1, b"fatal: Out of memory, malloc failed", "build", "infrastructure"),
        ("FAILED", 137, b"", "test", "infrastructure"),
        ("FAILED", -9, b"", "test", "infrastructure"),
        ("FAILED", 143, b"", "test", "infrastructure"),
        ("FAILED", 1, b"curl: (6) Could not resolve host: pypi.org", "build", "infrastructure"),
        ("FAILED", 1, b"read: Connection reset by peer", "build", "infrastructure"),
        ("TIMED_OUT", None, b"", "test", "infrastructure"),
        ("FAILED", 127, b"", "build", "tooling"),
        ("FAILED", 126, b"", "build", "tooling"),
        ("FAILED", 2, b"/bin/sh: 1: make: not found", "build", "tooling"),
        ("FAILED", 1, b"bash: pytest: command not found", "test", "tooling"),
        ("FAILED", 1, b"open('/out'): Permission denied", "build", "tooling"),
        ("FAILED", 1, b"FAILED test_x.py::test_y", "apps/api:test", "user"),
        ("FAILED", 1, b"E501 line too long", "apps/api:lint", "user"),
        ("FAILED", 2, b"error[E0308]: mismatched types", "build", "user"),
        ("FAILED", 3, b"", "deploy-docs", "user"),
    ],
)
def test_it_classifies_failures(status, exit_code, log, job, expected):
    c = classify(status=status, exit_code=exit_code, log_tail=log, job_name=job)
    assert c.failure_class == expected
    assert 0 < c.confidence <= 1 and c.detail


NESTED_BWRAP = b"""\
E       AssertionError: {"level": "error", "msg": "cannot start", "error": "bwrap: Creating \
new namespace failed: nesting depth or /proc/sys/user/max_*_namespaces exceeded (ENOSPC)"}
FAILED tests/runner/test_protocol.py::test_it_runs_a_job[bwrap] - AssertionError
========================= 2 failed, 54 passed in 41.20s =========================
"""


@pytest.mark.parametrize(
    ("log", "evidence"),
    [
        (NESTED_BWRAP, "2 failed, 54 passed"),
        (
            b"--- FAIL: TestDial (0.01s)\n    dial: connection timed out\nFAIL\tex/net\t0.1s\n",
            "FAIL\tex/net",
        ),
        (
            b"expected ETIMEDOUT\nTests:       1 failed, 9 passed, 10 total\n",
            "Tests:       1 failed",
        ),
        (
            b"disk full? No space left on device\ntest result: FAILED. 3 passed; 1 failed\n",
            "test result: FAILED",
        ),
        (
            b"Connection reset by peer\n[ERROR] Tests run: 4, Failures: 1, Errors: 0, Skipped: 0\n",
            "Tests run: 4",
        ),
        (b"Failed!  - Failed:     2, Passed:    10, Skipped:     0\n", "Failed:     2"),
        (b"OOM in fixture\nFAILED (failures=1)\n", "FAILED (failures=1)"),
    ],
)
def test_a_test_runners_failure_report_outweighs_error_text_in_the_tests_output(log, evidence):
    c = classify(status="FAILED", exit_code=1, log_tail=log, job_name="runner-tests")
    assert c.failure_class == "user" and evidence in c.detail, c


def test_error_text_after_passing_tests_is_still_infrastructure():
    log = b"===== 12 passed in 3.2s =====\nupload: write: No space left on device\n"
    c = classify(status="FAILED", exit_code=1, log_tail=log, job_name="unit")
    assert c.failure_class == "infrastructure" and "disk full" in c.detail


def test_it_names_the_evidence():
    c = classify(
        status="FAILED",
        exit_code=1,
        log_tail=b"ok\nwrite: No space left on device\nbye\n",
        job_name="b",
    )
    assert c.detail == "disk full: write: No space left on device"


def test_a_lost_runner_is_infrastructure_with_certainty():
    c = classify(status="FAILED", exit_code=None, log_tail=b"", job_name="x", runner_lost=True)
    assert (c.failure_class, c.confidence) == ("infrastructure", 1.0)


def test_it_is_deterministic():
    args = {"status": "FAILED", "exit_code": 1, "log_tail": b"Permission denied", "job_name": "t"}
    assert len({classify(**args) for _ in range(5)}) == 1
