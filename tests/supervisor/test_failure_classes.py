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
