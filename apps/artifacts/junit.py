"""Streaming JUnit XML parser: no Django, no tree, memory bounded whatever the file size.

Reports are written by untrusted code. The expat parser is defusedxml's (DTDs, entity
declarations and external references all refused: billion laughs, XXE), the document is
fed in chunks, and only the first MAX_CASES test cases and MAX_MESSAGE_CHARS of each text
are kept; the rest of the file is still read (up to MAX_SCAN_BYTES) to count its tests,
so a page can say "truncated: N of M". Characters XML forbids (stray control characters,
ANSI colour escapes, references to them, undecodable bytes) are dropped or replaced one by
one before the parser sees them, so they cost themselves, never the whole report.

Producers' conventions (see docs/test-reports.md): googletest's and ctest's
`status="notrun"`/`"disabled"` are skips; `<failure>`/`<error>` directly under a
`<testsuite>` is an error of that suite; a test repeated inside one report (gotestsum
--rerun-fails, pytest-rerunfailures, web-test-runner) and surefire's `<flakyFailure>`,
`<flakyError>`, `<rerunFailure>`, `<rerunError>` are tries of one test whose outcome is
the last try's, flaky when the tries disagree; a suite with totals but no test cases
counts its totals.
"""

import codecs
import re
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from apps.artifacts.xmltext import chunks, clean, encoding

MAX_CASES = 20_000
MAX_MESSAGE_CHARS = 4000
MAX_NAME_CHARS = 255
MAX_DEPTH = 32
MAX_SCAN_BYTES = 1024 * 1024 * 1024
MAX_SECONDS = 7 * 24 * 3600.0  # a test or suite "taking" longer is a broken clock
CHUNK_BYTES = 256 * 1024

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
_SKIP_MARKS = frozenset({"notrun", "disabled", "skipped", "suppressed", "ignored"})
_FAIL_MARKS = frozenset({"fail", "failed", "failure"})
_TRIES = {  # element -> (outcome of that try, label in the message)
    "failure": (FAILED, ""),
    "error": (ERROR, ""),
    "flakyFailure": (FAILED, "flaky failure"),
    "flakyError": (ERROR, "flaky error"),
    "rerunFailure": (FAILED, "rerun failure"),
    "rerunError": (ERROR, "rerun error"),
}
_BAD = (FAILED, ERROR)
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")


class ReportRejected(Exception):
    """The report is not a JUnit document this parser accepts (message says why)."""


@dataclass(slots=True)
class Case:
    suite: str
    classname: str
    name: str
    status: str
    duration: float | None
    message: str
    flaky: bool = False
    tries: int = 1


@dataclass
class Parsed:
    cases: list[Case] = field(default_factory=list)
    truncated: bool = False
    seen: int = 0  # distinct tests in the report (kept or not)
    duration: float | None = None
    suite_totals: dict[str, int] = field(default_factory=dict)  # suites without test cases


def clip(value: str | None, limit: int) -> str:
    text = (value or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seconds(value: str | None) -> float | None:
    """A duration attribute in seconds; None when missing, malformed or absurd (negative,
    NaN, infinite, longer than a week). Surefire's grouped "1,234.5" is read."""
    if not value:
        return None
    value = value.strip()
    if _GROUPED.match(value):
        value = value.replace(",", "")
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 <= number <= MAX_SECONDS else None  # NaN fails both comparisons


def _count(value: str | None) -> int:
    try:
        return max(0, min(int((value or "0").strip()), 10**9))
    except ValueError:
        return 0


class _Text:
    """Character data of one element: the head up to `limit`, or (tail=True, for
    captured output whose end explains a failure) the last `limit` characters."""

    __slots__ = ("parts", "size", "limit", "tail")

    def __init__(self, limit: int, tail: bool = False):
        self.parts: list[str] = []
        self.size, self.limit, self.tail = 0, limit, tail

    def add(self, data: str) -> None:
        if self.tail:
            self.parts.append(data)
            self.size += len(data)
            if self.size > 2 * self.limit:
                joined = "".join(self.parts)[-self.limit :]
                self.parts, self.size = [joined], len(joined)
        elif self.size < self.limit:
            self.parts.append(data)
            self.size += len(data)

    def text(self) -> str:
        joined = "".join(self.parts)
        return joined[-self.limit :] if self.tail else joined


@dataclass
class _Try:
    outcome: str
    label: str
    head: str
    body: _Text


@dataclass(slots=True)
class _Open:
    """A <testcase> or a <testsuite> being read."""

    depth: int
    attrs: dict
    tries: list[_Try] = field(default_factory=list)
    output: _Text | None = None
    skipped: _Text | None = None  # the skip reason, when marked skipped
    keep: bool = True
    key: int = 0
    covered: bool = False  # a suite whose tests were counted (cases, totals or an error)
    name: str = ""  # a suite's name, or its nearest named ancestor's


def _message(tries: list[_Try], output: str) -> str:
    parts = []
    for t in tries:
        body = t.body.text().strip()
        text = t.head if not body else f"{t.head}\n{body}" if t.head else body
        parts.append(f"{t.label}: {text}" if t.label else text)
    if output and not any(t.body.text().strip() for t in tries):
        parts.append(output)  # ctest: the failure is empty, the output says why
    return clip("\n\n".join(p for p in parts if p), MAX_MESSAGE_CHARS)


class _Reader:
    """Expat callbacks: element events drive a small state machine (the suite stack, the
    open test case, a surefire try inside it, the element whose text is captured)."""

    def __init__(self, out: Parsed):
        self.out = out
        self.depth = 0
        self.suites: list[_Open] = []
        self.case: _Open | None = None
        self.try_: _Try | None = None
        self.try_depth = 0
        self.capture: _Text | None = None
        self.capture_depth = 0
        self.index: dict[int, int] = {}  # hash of (suite, class, name) -> index or -1
        self.root_time: float | None = None
        self.top_times: list[float] = []
        self.declared = 0

    # -- expat handlers --------------------------------------------------------------
    def start(self, tag: str, attrs: dict) -> None:
        self.depth += 1
        kind = tag.rsplit("}", 1)[-1] if "}" in tag else tag
        if self.case is not None:
            self._start_inside(self.case, kind, attrs)
        elif kind == "testcase" and self.suites:
            self._start_case(attrs)
        elif kind in ("testsuite", "testsuites"):
            self._start_suite(kind, attrs)
        elif self.suites and self.depth == self.suites[-1].depth + 1:
            self._start_inside(self.suites[-1], kind, attrs)  # <error> of the suite itself
        elif self.depth == 1:
            raise ReportRejected(f"root element is <{clip(kind, 50)}>, not a test suite")

    def data(self, text: str) -> None:
        if self.capture is not None:
            self.capture.add(text)

    def end(self, tag: str) -> None:
        depth = self.depth
        self.depth -= 1
        if depth == self.capture_depth:
            self.capture, self.capture_depth = None, 0
        if depth == self.try_depth:
            self.try_, self.try_depth = None, 0
        if self.case is not None:
            if depth == self.case.depth:
                self._end_case(self.case)
                self.case = None
        elif self.suites and depth == self.suites[-1].depth:
            self._end_suite(self.suites.pop())

    # -- starts ----------------------------------------------------------------------
    def _start_suite(self, kind: str, attrs: dict) -> None:
        if self.depth == 1:
            self.root_time = seconds(attrs.get("time"))
            self.declared = _count(attrs.get("tests"))
        elif self.depth == 2 and len(self.suites) == 1:
            time = seconds(attrs.get("time"))
            if time is not None:
                self.top_times.append(time)
        if len(self.suites) >= MAX_DEPTH:
            raise ReportRejected(f"test suites nested deeper than {MAX_DEPTH}")
        own = attrs if kind == "testsuite" else {}
        name = own.get("name") or (self.suites[-1].name if self.suites else "")
        self.suites.append(_Open(self.depth, own, name=name))

    def _start_case(self, attrs: dict) -> None:
        suite = self.suites[-1]
        key = hash((suite.name, attrs.get("classname") or attrs.get("class"), attrs.get("name")))
        known = self.index.get(key)
        keep = len(self.out.cases) < MAX_CASES if known is None else known >= 0
        self.case = _Open(self.depth, attrs, keep=keep, key=key)
        suite.covered = True  # and its ancestors, when it ends

    def _start_inside(self, owner: _Open, kind: str, attrs: dict) -> None:
        if self.try_ is not None:  # inside a surefire try: only its stack trace counts
            if kind == "stackTrace":
                self._capture(self.try_.body)
            return
        if not owner.keep:
            return
        if kind in _TRIES:
            outcome, label = _TRIES[kind]
            head = clip(attrs.get("message") or attrs.get("type"), MAX_MESSAGE_CHARS)
            t = _Try(outcome, label, head, _Text(MAX_MESSAGE_CHARS))
            owner.tries.append(t)
            self._capture(t.body)
            if label:
                self.try_, self.try_depth = t, self.depth
        elif kind == "skipped":
            owner.skipped = _Text(MAX_MESSAGE_CHARS)
            if attrs.get("message"):
                owner.skipped.add(attrs["message"])
            else:
                self._capture(owner.skipped)
        elif kind in ("system-out", "system-err"):
            if owner.output is None:
                owner.output = _Text(MAX_MESSAGE_CHARS, tail=True)
            self._capture(owner.output)

    def _capture(self, text: _Text) -> None:
        self.capture, self.capture_depth = text, self.depth

    def _keepable(self, key: int) -> bool:
        known = self.index.get(key)
        return len(self.out.cases) < MAX_CASES if known is None else known >= 0

    # -- ends ------------------------------------------------------------------------
    def _end_case(self, case: _Open) -> None:
        if not case.keep:
            self.index.setdefault(case.key, -1)
            self.out.truncated = True
            return
        a = case.attrs
        status = _status(case)
        if status == SKIPPED and not case.tries:
            message = clip(case.skipped.text() if case.skipped else "", MAX_MESSAGE_CHARS)
        else:
            message = _message(case.tries, case.output.text().strip() if case.output else "")
        self._add(
            case.key,
            Case(
                suite=clip(self.suites[-1].name, MAX_NAME_CHARS),
                classname=clip(a.get("classname") or a.get("class"), MAX_NAME_CHARS),
                name=clip(a.get("name"), MAX_NAME_CHARS) or "(unnamed)",
                status=status,
                duration=seconds(a.get("time")),
                message=message,
                flaky=status == PASSED and any(t.outcome in _BAD for t in case.tries),
                tries=1 + sum(1 for t in case.tries if t.label),
            ),
        )

    def _add(self, key: int, new: Case) -> None:
        known = self.index.get(key)
        if known is None:
            self.index[key] = len(self.out.cases)
            self.out.cases.append(new)
            return
        old = self.out.cases[known]  # a repeat: another try of the same test
        outcomes = {old.status, new.status} - {SKIPPED}
        old.flaky = old.flaky or new.flaky or (PASSED in outcomes and len(outcomes) > 1)
        old.tries += new.tries
        if new.status != SKIPPED or old.status == SKIPPED:
            old.status = new.status
        if new.duration is not None:
            old.duration = new.duration
        if new.message and new.message != old.message:
            joined = f"{old.message}\n\n{new.message}" if old.message else new.message
            old.message = clip(joined, MAX_MESSAGE_CHARS)

    def _end_suite(self, suite: _Open) -> None:
        a = suite.attrs
        if suite.tries:  # the suite itself failed (a class that did not load)
            self._suite_error(suite)
            suite.covered = True
        elif not suite.covered and a.get("tests"):
            self._count_totals(a)
            suite.covered = True
        if self.suites and suite.covered:
            self.suites[-1].covered = True

    def _suite_error(self, suite: _Open) -> None:
        name = suite.name
        key = hash((name, name, "(suite)"))
        if not self._keepable(key):
            self.index.setdefault(key, -1)
            self.out.truncated = True
            return
        output = suite.output.text().strip() if suite.output else ""
        self._add(
            key,
            Case(
                suite=clip(name, MAX_NAME_CHARS),
                classname=clip(name, MAX_NAME_CHARS),
                name="(suite)",
                status=ERROR if any(t.outcome == ERROR for t in suite.tries) else FAILED,
                duration=seconds(suite.attrs.get("time")),
                message=_message(suite.tries, output),
            ),
        )

    def _count_totals(self, a: dict) -> None:
        tests = _count(a.get("tests"))
        failed, errors = _count(a.get("failures")), _count(a.get("errors"))
        skipped = _count(a.get("skipped")) + _count(a.get("disabled"))
        totals = self.out.suite_totals
        for status, n in (
            (FAILED, min(failed, tests)),
            (ERROR, min(errors, tests)),
            (SKIPPED, min(skipped, tests)),
            (PASSED, max(0, tests - failed - errors - skipped)),
        ):
            totals[status] = totals.get(status, 0) + n


def _status(case: _Open) -> str:
    """The outcome of a test's last try: surefire's reruns, else its <failure>/<error>,
    else a skip marker or a producer's status attribute."""
    reruns = [t for t in case.tries if t.label.startswith("rerun")]
    plain = [t for t in case.tries if not t.label]
    if reruns or plain:
        return (reruns or plain)[-1].outcome
    marks = {(case.attrs.get("status") or "").lower(), (case.attrs.get("result") or "").lower()}
    if case.skipped is not None or marks & _SKIP_MARKS:
        return SKIPPED
    return FAILED if marks & _FAIL_MARKS else PASSED


def parse(source: bytes | BinaryIO, *, scan_limit: int | None = None) -> Parsed:
    """The test cases of a JUnit XML document or binary stream (`<testsuites>` or
    `<testsuite>` at the root, suites may nest). Raises ReportRejected for anything else."""
    limit = MAX_SCAN_BYTES if scan_limit is None else scan_limit
    out = Parsed()
    reader = _Reader(out)
    expat = DefusedXMLParser(target=object(), forbid_dtd=True).parser
    expat.ordered_attributes = False
    expat.buffer_text = True
    expat.buffer_size = 64 * 1024
    expat.StartElementHandler = reader.start
    expat.EndElementHandler = reader.end
    expat.CharacterDataHandler = reader.data
    decoder, carry, scanned = None, "", 0
    try:
        for chunk in chunks(source, limit + 1, CHUNK_BYTES):
            scanned += len(chunk)
            if scanned > limit:
                chunk = chunk[: len(chunk) - (scanned - limit)]
            if decoder is None:
                decoder = codecs.getincrementaldecoder(encoding(chunk[:1024]))("replace")
            text = carry + decoder.decode(chunk)
            cut = max(text.rfind("&", -12), text.rfind("\x1b", -40))
            carry, text = (text[cut:], text[:cut]) if cut >= 0 else ("", text)
            expat.Parse(clean(text), False)
            if scanned > limit:
                break
        else:
            tail = carry + (decoder.decode(b"", True) if decoder else "")
            expat.Parse(clean(tail), True)
            scanned = 0
    except DefusedXmlException as exc:
        raise ReportRejected(f"forbidden XML construct: {type(exc).__name__}") from None
    except (ExpatError, ValueError, UnicodeError) as exc:
        raise ReportRejected(f"not well-formed XML: {clip(str(exc), 300)}") from None
    out.seen = len(reader.index)
    if scanned:  # stopped reading: the document's own count may be higher
        out.truncated = True
        out.seen = max(out.seen, reader.declared)
    out.duration = reader.root_time
    if out.duration is None and reader.top_times:
        out.duration = sum(reader.top_times)
    return out
