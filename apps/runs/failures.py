"""Deterministic, rule-based failure classification of an attempt: a class, a confidence
and the evidence. Retry eligibility (engine._may_retry) follows the class."""

import re
from dataclasses import dataclass

from apps.artifacts import logs
from apps.artifacts.models import LogChunk
from apps.runs.choices import FailureClass

_INFRA_PATTERNS = [
    (re.compile(rb"No space left on device|ENOSPC|disk quota exceeded", re.I), "disk full"),
    (
        re.compile(rb"Out of memory|OOMKilled|Cannot allocate memory|MemoryError|oom-kill", re.I),
        "out of memory",
    ),
    (
        re.compile(
            rb"Could not resolve host|Temporary failure in name resolution|Connection timed out|"
            rb"Connection reset by peer|Network is unreachable|ETIMEDOUT|ECONNRESET|EAI_AGAIN|"
            rb"TLS handshake timeout|502 Bad Gateway|503 Service Unavailable",
            re.I,
        ),
        "network error",
    ),
]
_TOOLING_PATTERNS = [
    (
        re.compile(
            rb"command not found|: not found$|No such file or directory: '[^']+'$", re.I | re.M
        ),
        "command not found",
    ),
    (re.compile(rb"Permission denied|EACCES|Operation not permitted", re.I), "permission denied"),
]
# A test runner's own summary of failed tests: the tests ran and some failed. Error text
# in such a log (an assertion quoting "ENOSPC", a test about timeouts) is the tests'
# output, not the machine's state, so this wins over the infrastructure patterns.
_TEST_REPORT = re.compile(
    rb"^=+ .*\b\d+ failed\b.*=+$|^FAILED \S+::\S+"  # pytest
    rb"|^FAILED \((failures|errors)=\d+"  # unittest
    rb"|^--- FAIL: \S+|^FAIL\t\S+"  # go test
    rb"|^Tests:\s+\d+ failed|^\s*Tests\s+\d+ failed"  # jest, vitest
    rb"|^test result: FAILED\."  # cargo test
    rb"|^\[ERROR\] Tests run: \d+, Failures: \d+, Errors: \d+|There are test failures"  # maven
    rb"|^Failed!\s+-\s+Failed:\s+[1-9]",  # dotnet test
    re.M,
)
_SIGNALS = {
    137: "killed by SIGKILL (often out of memory)",
    143: "terminated by SIGTERM",
    139: "segmentation fault",
}
_USER_KIND = [
    ("test", "tests failed"),
    ("lint", "lint findings"),
    ("build", "build failed"),
]


@dataclass(frozen=True)
class Classification:
    failure_class: str
    confidence: float
    detail: str


def classify(
    *, status: str, exit_code: int | None, log_tail: bytes, job_name: str, runner_lost: bool = False
) -> Classification:
    if runner_lost:
        return Classification(
            FailureClass.INFRASTRUCTURE, 1.0, "runner lost: lease expired without a result"
        )
    if status == "TIMED_OUT":
        return Classification(FailureClass.INFRASTRUCTURE, 0.6, "job exceeded its time limit")
    if exit_code is not None and (exit_code in _SIGNALS or exit_code < 0):
        why = _SIGNALS.get(exit_code, f"killed by signal {-exit_code}")
        return Classification(FailureClass.INFRASTRUCTURE, 0.8, why)
    tail = log_tail[-16384:]
    report = _last(_TEST_REPORT, tail)
    if report is not None:
        return Classification(FailureClass.USER, 0.85, f"tests failed: {_line(tail, report)}")
    for pattern, why in _INFRA_PATTERNS:
        m = pattern.search(tail)
        if m:
            return Classification(FailureClass.INFRASTRUCTURE, 0.85, f"{why}: {_line(tail, m)}")
    if exit_code == 127:
        return Classification(FailureClass.TOOLING, 0.95, "command not found (exit 127)")
    if exit_code == 126:
        return Classification(FailureClass.TOOLING, 0.9, "command not executable (exit 126)")
    for pattern, why in _TOOLING_PATTERNS:
        m = pattern.search(tail)
        if m:
            return Classification(FailureClass.TOOLING, 0.7, f"{why}: {_line(tail, m)}")
    kind = job_name.rsplit(":", 1)[-1].lower()
    for name, why in _USER_KIND:
        if name in kind:
            return Classification(FailureClass.USER, 0.8, f"{why} (exit {exit_code})")
    return Classification(FailureClass.USER, 0.6, f"step failed (exit {exit_code})")


def _last(pattern: re.Pattern, data: bytes) -> re.Match | None:
    found = None
    for found in pattern.finditer(data):  # noqa: B007 - the last one is the summary
        pass
    return found


def _line(data: bytes, m: re.Match) -> str:
    start = data.rfind(b"\n", 0, m.start()) + 1
    end = data.find(b"\n", m.end())
    return data[start : end if end != -1 else len(data)].decode("utf-8", "replace").strip()[:300]


TAIL_BYTES = 64 * 1024


def log_tail(attempt, nbytes: int = TAIL_BYTES) -> bytes:
    """The last `nbytes` of an attempt's log, reading only the last live chunks (a log
    can be 64 MiB); once finalised, from the log artifact."""
    parts: list[bytes] = []
    size = 0
    for data in (
        LogChunk.objects.filter(attempt_id=attempt.pk)
        .order_by("-start")
        .values_list("data", flat=True)
    ).iterator(chunk_size=2):
        parts.append(bytes(data))
        size += len(data)
        if size >= nbytes:
            break
    if parts:
        return b"".join(reversed(parts))[-nbytes:]
    return logs.tail(attempt, nbytes)
