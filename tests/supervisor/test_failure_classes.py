"""The deterministic failure classifier: infrastructure, tooling, user (by job kind)."""

from pathlib import Path

import pytest

from apps.runs.failures import classify


@pytest.mark.parametrize(
    ("status", "exit_code", "log", "job", "expected"),
    [
        ("FAILED", 1, b"cc1: No space left on device", "build", "infrastructure"),
        ("FAILED", 1, b"fatal: Out of memory, malloc failed", "build", "infrastructure"),
        ("FAILED", 137, b"", "test", "infrastructure"),
        ("FAILED", -9, b"", "test", "infrastructure"),
        ("FAILED", 139, b"", "test", "user"),
        ("FAILED", -11, b"", "build", "user"),
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


LOGS = Path(__file__).parent / "logs"

# Every rule against the output of the real tool: (log file, exit code, class, evidence).
REAL_OUTPUT = [
    # test runners' summaries win over the error text their tests quote
    ("gradle-test-failed.log", 1, "user", "tests failed: > There were failing tests."),
    ("rspec-failed.log", 1, "user", "tests failed: 4 examples, 1 failure"),
    ("mocha-failing.log", 1, "user", "tests failed: 1 failing"),
    ("phpunit-failures.log", 1, "user", "tests failed: Tests: 5, Assertions: 9, Failures: 1."),
    ("phpunit-errors.log", 2, "user", "tests failed: Tests: 3, Assertions: 2, Errors: 1."),
    ("ctest-failed.log", 8, "user", "tests failed: Errors while running CTest"),
    # network failures as package managers and registries print them
    ("apt-resolve.log", 100, "infrastructure", "name resolution: Temporary failure resolving 'deb"),
    ("apt-503.log", 100, "infrastructure", "server error: 503  Service Unavailable"),
    ("apt-connect-timeout.log", 100, "infrastructure", "timeout: Could not connect"),
    ("pip-resolve.log", 1, "infrastructure", "name resolution: WARNING: Retrying"),
    ("pip-read-timeout.log", 2, "infrastructure", "timeout: socket.timeout"),
    ("pip-http-503.log", 1, "infrastructure", "server error: ERROR: HTTP error 503"),
    ("npm-econnreset.log", 1, "infrastructure", "connection lost: npm ERR! code ECONNRESET"),
    ("npm-eai-again.log", 1, "infrastructure", "name resolution: npm error code EAI_AGAIN"),
    ("npm-503.log", 1, "infrastructure", "server error: npm ERR! code E503"),
    ("npm-429.log", 1, "infrastructure", "rate limited: npm ERR! code E429"),
    ("go-lookup.log", 1, "infrastructure", "name resolution: go: github.com/stretchr"),
    ("go-io-timeout.log", 1, "infrastructure", "timeout: go: golang.org/x/sys"),
    ("go-reset.log", 1, "infrastructure", "connection lost: verifying google.golang.org"),
    ("go-502.log", 1, "infrastructure", "server error: go: github.com/prometheus"),
    ("docker-rate-limit.log", 125, "infrastructure", "rate limited: docker: Error response"),
    ("docker-client-timeout.log", 1, "infrastructure", "timeout: Error response from daemon"),
    ("podman-resolve.log", 125, "infrastructure", "name resolution: Error: initializing"),
    ("registry-503.log", 125, "infrastructure", "server error: Error: initializing source"),
    # out of memory, reported through a build tool or a compiler
    ("gcc-cc1plus-killed.log", 2, "infrastructure", "killed): c++: fatal error: Killed signal"),
    ("gcc-ice-killed.log", 2, "infrastructure", "killed): g++: internal compiler error"),
    ("make-error-137.log", 2, "infrastructure", "killed): make: *** [Makefile:31"),
    ("docker-build-137.log", 1, "infrastructure", "killed): #12 ERROR: process"),
    ("rustc-sigkill.log", 101, "infrastructure", "killed): process didn't exit"),
    ("ld-killed.log", 2, "infrastructure", "killed): collect2: fatal error: ld terminated"),
    # limits the job sets itself, and crashes of its own program: not retried
    ("node-heap.log", 134, "user", "JavaScript heap limit reached (raise --max-old-space-size)"),
    ("java-heap.log", 1, "user", "JVM heap limit reached (raise -Xmx): Exception in thread"),
    ("segfault.log", 1, "user", "segmentation fault: the program crashed: Segmentation fault"),
    ("go-nil-pointer.log", 2, "user", "segmentation fault: the program crashed: [signal"),
]


@pytest.mark.parametrize(("name", "exit_code", "expected", "evidence"), REAL_OUTPUT)
def test_it_classifies_real_tool_output(name, exit_code, expected, evidence):
    c = classify(
        status="FAILED",
        exit_code=exit_code,
        log_tail=(LOGS / name).read_bytes(),
        job_name="app:build",
    )
    assert (c.failure_class, evidence in c.detail) == (expected, True), c.detail


def test_every_sample_log_is_used():
    assert {p.name for p in LOGS.iterdir()} == {row[0] for row in REAL_OUTPUT}


@pytest.mark.parametrize(
    "line",
    [
        b"  503  Service Unavailable [IP: 151.101.2.132 80]",
        b"HTTP/1.1 502 Bad Gateway",
        b"curl: (22) The requested URL returned error: 504",
        b"error: RPC failed; HTTP 500 curl 22 The requested URL returned error: 500",
        b"unexpected status code 503 Service Temporarily Unavailable",
        b"status code: 502",
        b"Error 504 Gateway Time-out",
    ],
)
def test_http_5xx_is_a_network_error_however_spaced(line):
    c = classify(status="FAILED", exit_code=1, log_tail=line, job_name="build")
    assert c.failure_class == "infrastructure" and "server error" in c.detail, c


@pytest.mark.parametrize(
    "line",
    [
        b"assert response.status_code == 200, got 5030",
        b"Processed 503 records in 2 s",
        b"expected 137 items, got 136",
        b"10 examples, 0 failures",
        b"  3 passing (10ms)\n  0 failing",
        b"100% tests passed, 0 tests failed out of 12",
    ],
)
def test_look_alikes_are_not_infrastructure_or_failed_tests(line):
    c = classify(status="FAILED", exit_code=1, log_tail=line, job_name="app:lint")
    assert (c.failure_class, c.detail) == ("user", "lint findings (exit 1)"), c


@pytest.mark.parametrize(
    "tail",
    [
        b" \n" * 32_768,
        b"\t\n" * 32_768,
        b"Tests:" + b" \n" * 32_000,
        b"= " + b"1" * 65_000,
        b"= " + b"1 failed " * 1_820,  # 91 ms per search before "ends in =" was checked first
    ],
    ids=["blank-lines", "tab-lines", "summary-then-blanks", "one-long-line", "failed-repeated"],
)
def test_a_hostile_tail_is_classified_like_any_other(tail):
    # Classification runs inside the Complete request: a summary pattern whose blanks
    # crossed lines took 18 s on 100 KB of blank lines before it was confined to one line.
    c = classify(status="FAILED", exit_code=1, log_tail=tail, job_name="test")
    assert c.failure_class == "user" and c.detail
    found = classify(status="FAILED", exit_code=1, log_tail=tail + b"\n  2 failing\n", job_name="t")
    assert found.detail.endswith("2 failing")  # the summary after them is still found


def test_a_pytest_summary_line_must_end_in_equals_signs():
    tail = b"== 1 failed, 2 passed in 0.1s ==\n== 1 failed, not a summary\n"
    found = classify(status="FAILED", exit_code=1, log_tail=tail, job_name="build")
    assert found.detail == "tests failed: == 1 failed, 2 passed in 0.1s =="
