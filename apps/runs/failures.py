"""Deterministic, rule-based failure classification of an attempt: a class, a confidence
and the evidence line. Retry eligibility (engine._may_retry) follows the class.

The rules are tables, tried in order (docs/failure-classes.md explains each decision):
exit codes of signals; a test runner's own summary of failed tests (it wins over error
text the tests printed); limits the job itself configures (a JavaScript or JVM heap
limit: the same on every machine, not retried); infrastructure (disk full, out of memory
— also when a build tool reports a killed compiler —, network failures as package
managers and registries print them); tooling (command not found, permission denied);
then the job's kind. A segmentation fault (exit 139) is the program's own crash: user.
"""

import re
from dataclasses import dataclass

from apps.artifacts import logs
from apps.artifacts.models import LogChunk
from apps.runs.choices import FailureClass

_I = re.I | re.M


@dataclass(frozen=True)
class Rule:
    failure_class: str
    why: str
    pattern: re.Pattern
    confidence: float = 0.85


def _rules(failure_class: str, confidence: float, table: list[tuple[str, bytes, int]]):
    return [Rule(failure_class, why, re.compile(rx, flags), confidence) for why, rx, flags in table]


# A test runner's own summary of failed tests: the tests ran and some failed. Error text
# in such a log (an assertion quoting "ENOSPC", a test about timeouts) is the tests'
# output, not the machine's state, so this wins over every log rule below. Blanks are
# [ \t], never \s: a summary is one line, and \s after ^ would cross lines, making a log
# of blank lines quadratic to search (inside the Complete request). A pytest line must end
# in "=" (the lookahead) before its "N failed" is looked for: otherwise every "N failed" on
# a long line not ending so was followed by a rescan to the line's end (91 ms for 16 KiB).
TEST_SUMMARIES = re.compile(
    rb"^=+ (?=.*=$).*\b\d+ failed\b.*=+$|^FAILED \S+::\S+"  # pytest
    rb"|^FAILED \((failures|errors)=\d+"  # unittest
    rb"|^--- FAIL: \S+|^FAIL\t\S+"  # go test
    rb"|^Tests:[ \t]+\d+ failed|^[ \t]*Tests[ \t]+\d+ failed"  # jest, vitest
    rb"|^test result: FAILED\."  # cargo test
    rb"|^\[ERROR\] Tests run: \d+, Failures: \d+, Errors: \d+|There are test failures"  # maven
    rb"|^Failed![ \t]+-[ \t]+Failed:[ \t]+[1-9]"  # dotnet test
    rb"|^\d+ tests? completed, [1-9]\d* failed|^> There were failing tests\."  # gradle
    rb"|^\d+ examples?, [1-9]\d* failures?"  # rspec
    rb"|^[ \t]*[1-9]\d* failing[ \t]*$"  # mocha
    rb"|^(?:FAILURES|ERRORS)![ \t]*$"  # phpunit
    rb"|^Tests: \d+, Assertions: \d+, (?:Errors|Failures): [1-9]"
    rb"|^\d+% tests passed, [1-9]\d* tests? failed out of \d+|^Errors while running CTest",  # ctest
    re.M,
)

# Limits the job sets for itself: raising them is the fix, a retry fails the same way.
JOB_LIMITS = _rules(
    FailureClass.USER,
    0.8,
    [
        (
            "JavaScript heap limit reached (raise --max-old-space-size)",
            rb"JavaScript heap out of memory",
            _I,
        ),
        (
            "JVM heap limit reached (raise -Xmx)",
            rb"java\.lang\.OutOfMemoryError: (?:Java heap space|GC overhead limit exceeded"
            rb"|Metaspace)|JVM heap space is exhausted",
            0,
        ),
        ("segmentation fault: the program crashed", rb"Segmentation fault|SIGSEGV", 0),
    ],
)

_RESOLVE = (
    rb"Temporary failure in name resolution|Temporary failure resolving|Could not resolve host"
    rb"|Could not resolve '|getaddrinfo (?:EAI_AGAIN|ENOTFOUND)|\bEAI_AGAIN\b"
    rb"|Name or service not known|Name does not resolve|: no such host"
    rb"|lookup \S+ on \S+:53: |server misbehaving"
)
_TIMEOUT = (
    rb"Connection timed out|\bE?TIMEDOUT\b|ESOCKETTIMEDOUT|Read timed out|ReadTimeoutError"
    rb"|ConnectTimeoutError|i/o timeout|TLS handshake timeout|Client\.Timeout exceeded"
    rb"|Operation timed out|Timeout was reached"
)
_RESET = (
    rb"Connection reset by peer|\bECONNRESET\b|connection reset|IncompleteRead"
    rb"|Connection aborted|socket hang up|Network is unreachable|No route to host"
    rb"|Could not connect to \S+:\d+|Unable to connect to \S+:"
)
_HTTP_5XX = (
    rb"\b50[0234][ \t]+(?:Internal Server Error|Bad Gateway|Service (?:Temporarily )?Unavailable"
    rb"|Gateway Time-?out)"
    rb"|\b(?:HTTP(?:/[\d.]+)?|HTTP error|status(?: code)?|response code|returned error)[ \t:]*"
    rb"50[0234]\b|\bnpm (?:ERR!|error) code E50[0234]\b"
)
_RATE_LIMIT = (
    rb"toomanyrequests|\b429[ \t]+Too Many Requests|pull rate limit|rate limit exceeded"
    rb"|\b(?:HTTP error|status(?: code)?)[ \t:]*429\b|\bnpm (?:ERR!|error) code E429\b"
)
_BUILD_OOM = (
    rb"Killed signal terminated program \S+|internal compiler error: Killed"
    rb"|terminated with signal 9 \[Killed\]|signal: 9, SIGKILL"
    rb"|(?:\bError|exit code:?|exit status|returned a non-zero code:|exited with code) 137\b"
    rb"|^make(?:\[\d+\])?: \*\*\* \[.*\] Killed$|^.*: line \d+: +\d+ Killed\b"
    rb"|build daemon disappeared unexpectedly"
)
INFRASTRUCTURE = _rules(
    FailureClass.INFRASTRUCTURE,
    0.85,
    [
        ("disk full", rb"No space left on device|ENOSPC|disk quota exceeded", re.I),
        (
            "out of memory",
            rb"Out of memory|OOMKilled|Cannot allocate memory|MemoryError|oom-kill",
            re.I,
        ),
        ("out of memory (a build step was killed)", _BUILD_OOM, re.M),
        ("network error: name resolution", _RESOLVE, re.I),
        ("network error: rate limited", _RATE_LIMIT, re.I),
        ("network error: server error", _HTTP_5XX, re.I),
        ("network error: timeout", _TIMEOUT, re.I),
        ("network error: connection lost", _RESET, re.I),
    ],
)
TOOLING = _rules(
    FailureClass.TOOLING,
    0.7,
    [
        (
            "command not found",
            rb"command not found|: not found$|No such file or directory: '[^']+'$",
            _I,
        ),
        ("permission denied", rb"Permission denied|EACCES|Operation not permitted", re.I),
    ],
)
MACHINE_RULES = [*JOB_LIMITS, *INFRASTRUCTURE]  # before exit codes 126/127, then TOOLING


# The container executor's own verdicts (runner/deltaci_runner/oci.py): it saw the memory
# cgroup's OOM kill or the pull's error. A missing image or refused credentials is the
# job's configuration (never retried); an unreachable registry is infrastructure.
CONTAINER = [
    Rule(
        FailureClass.INFRASTRUCTURE,
        "out of memory",
        re.compile(rb"^\[deltaci\] out of memory: .*$", re.M),
        0.95,
    ),
    Rule(
        FailureClass.USER,
        "configuration",
        re.compile(rb"^\[deltaci\] image (?:unavailable|pull failed) \(configuration\).*$", re.M),
        0.95,
    ),
    Rule(
        FailureClass.INFRASTRUCTURE,
        "image registry unreachable",
        re.compile(rb"^\[deltaci\] image pull failed \(infrastructure\).*$", re.M),
        0.95,
    ),
]
_SIGNALS = {
    137: "killed by SIGKILL (often out of memory)",
    -9: "killed by SIGKILL (often out of memory)",
    143: "terminated by SIGTERM",
    -15: "terminated by SIGTERM",
}
_CRASHES = {139: "segmentation fault (exit 139)", -11: "segmentation fault (SIGSEGV)"}
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
    for rule in CONTAINER:
        m = rule.pattern.search(log_tail[-16384:])
        if m:
            return Classification(
                rule.failure_class, rule.confidence, f"{rule.why}: {_line(log_tail[-16384:], m)}"
            )
    if exit_code in _CRASHES:
        return Classification(FailureClass.USER, 0.75, _CRASHES[exit_code])
    if exit_code is not None and (exit_code in _SIGNALS or exit_code < 0):
        why = _SIGNALS.get(exit_code, f"killed by signal {-exit_code}")
        return Classification(FailureClass.INFRASTRUCTURE, 0.8, why)
    tail = log_tail[-16384:]
    report = _last(TEST_SUMMARIES, tail)
    if report is not None:
        return Classification(FailureClass.USER, 0.85, f"tests failed: {_line(tail, report)}")
    found = _first(MACHINE_RULES, tail)
    if found is not None:
        return found
    if exit_code == 127:
        return Classification(FailureClass.TOOLING, 0.95, "command not found (exit 127)")
    if exit_code == 126:
        return Classification(FailureClass.TOOLING, 0.9, "command not executable (exit 126)")
    found = _first(TOOLING, tail)
    if found is not None:
        return found
    kind = job_name.rsplit(":", 1)[-1].lower()
    for name, why in _USER_KIND:
        if name in kind:
            return Classification(FailureClass.USER, 0.8, f"{why} (exit {exit_code})")
    return Classification(FailureClass.USER, 0.6, f"step failed (exit {exit_code})")


def _first(rules: list[Rule], tail: bytes) -> Classification | None:
    for rule in rules:
        m = rule.pattern.search(tail)
        if m:
            return Classification(
                rule.failure_class, rule.confidence, f"{rule.why}: {_line(tail, m)}"
            )
    return None


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
