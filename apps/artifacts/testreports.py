"""JUnit XML test reports: parsed once per artifact into TestResult rows.

Reports are written by untrusted code, so the parser assumes hostility: the file is read
with a byte cap, parsed with defusedxml with DTDs, entities and external references all
forbidden (billion laughs, XXE), and the number of kept test cases and the length of every
kept string are bounded. A report that breaks any rule is recorded as a parse error on its
TestReport and never raises out of `parse_attempt_reports`.
"""

import logging
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from django.db import IntegrityError, transaction

from apps.artifacts import storage
from apps.artifacts.models import Artifact, ArtifactType, TestReport, TestResult, TestStatus

log = logging.getLogger(__name__)

MAX_REPORT_BYTES = 10 * 1024 * 1024
MAX_CASES = 20_000
MAX_MESSAGE_CHARS = 4000
MAX_NAME_CHARS = 255
MAX_DEPTH = 32


class ReportRejected(Exception):
    """The report is not a JUnit document this parser accepts (message says why)."""


@dataclass
class Case:
    suite: str
    classname: str
    name: str
    status: str
    duration: float | None
    message: str


@dataclass
class Parsed:
    cases: list[Case] = field(default_factory=list)
    truncated: bool = False


def _clip(value: str | None, limit: int) -> str:
    text = (value or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(value: str | None) -> float | None:
    try:
        seconds = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds or seconds < 0 or seconds > 1e9:  # NaN, inf
        return None
    return seconds


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _case(element: Element, suite: str) -> Case:
    status, message = TestStatus.PASSED, ""
    for child in element:
        kind = _local(child.tag)
        if kind in ("failure", "error", "skipped"):
            status = {"failure": TestStatus.FAILED, "error": TestStatus.ERROR}.get(
                kind, TestStatus.SKIPPED
            )
            head = child.get("message") or child.get("type") or ""
            body = child.text or ""
            message = head if not body.strip() else f"{head}\n{body}" if head else body
            if status != TestStatus.SKIPPED:
                break  # a failure outranks a skip marker on the same case
    return Case(
        suite=_clip(suite, MAX_NAME_CHARS),
        classname=_clip(element.get("classname") or element.get("class"), MAX_NAME_CHARS),
        name=_clip(element.get("name"), MAX_NAME_CHARS) or "(unnamed)",
        status=status,
        duration=_duration(element.get("time")),
        message=_clip(message, MAX_MESSAGE_CHARS),
    )


def parse(data: bytes) -> Parsed:
    """The test cases of a JUnit XML document (`<testsuites>` or `<testsuite>` at the
    root, suites may nest). Raises ReportRejected for anything else."""
    if len(data) > MAX_REPORT_BYTES:
        raise ReportRejected(f"report is larger than {MAX_REPORT_BYTES} bytes")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ReportRejected(f"forbidden XML construct: {type(exc).__name__}") from None
    except (ParseError, ValueError, UnicodeError) as exc:
        raise ReportRejected(f"not well-formed XML: {_clip(str(exc), 300)}") from None
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise ReportRejected(f"root element is <{_clip(_local(root.tag), 50)}>, not a test suite")
    out = Parsed()
    stack: list[tuple[Element, str, int]] = [(root, "", 0)]
    while stack:
        element, suite, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ReportRejected(f"test suites nested deeper than {MAX_DEPTH}")
        kind = _local(element.tag)
        if kind == "testcase":
            if len(out.cases) >= MAX_CASES:
                out.truncated = True
                break
            out.cases.append(_case(element, suite))
            continue
        if kind == "testsuite":
            suite = element.get("name") or suite
        if kind in ("testsuites", "testsuite"):
            # reversed so the stack yields children in document order
            stack.extend((child, suite, depth + 1) for child in reversed(element))
    return out


def _read(artifact: Artifact) -> bytes:
    if artifact.size > MAX_REPORT_BYTES:
        raise ReportRejected(f"report is larger than {MAX_REPORT_BYTES} bytes")
    try:
        with storage.open_for_read(artifact.key) as fh:
            data = fh.read(MAX_REPORT_BYTES + 1)
    except (FileNotFoundError, ValueError) as exc:
        raise ReportRejected(f"report could not be read from the store: {exc}") from None
    # other OSErrors (the store is down) propagate: the task retries, nothing is recorded
    if len(data) > MAX_REPORT_BYTES:
        raise ReportRejected(f"report is larger than {MAX_REPORT_BYTES} bytes")
    return data


def parse_artifact(artifact: Artifact) -> TestReport | None:
    """Parse one JUnit artifact into a TestReport and its TestResults; None when it was
    already parsed (a repeat of the task changes nothing)."""
    if TestReport.objects.filter(artifact=artifact).exists():
        return None
    attempt = artifact.attempt
    try:
        parsed, error = parse(_read(artifact)), ""
    except ReportRejected as exc:
        parsed, error = Parsed(), str(exc)
        log.warning("junit report rejected", extra={"artifact": artifact.pk, "why": error})
    try:
        with transaction.atomic():
            report = TestReport.objects.create(
                artifact=artifact,
                attempt=attempt,
                error=error,
                total=len(parsed.cases),
                truncated=parsed.truncated,
            )
            TestResult.objects.bulk_create(
                [
                    TestResult(
                        report=report,
                        attempt_id=attempt.pk,
                        job_id=attempt.job_id,
                        run_id=attempt.run_id,
                        suite=c.suite,
                        classname=c.classname,
                        name=c.name,
                        status=c.status,
                        duration=c.duration,
                        message=c.message,
                    )
                    for c in parsed.cases
                ],
                batch_size=500,
            )
    except IntegrityError:
        return None  # a concurrent parse of the same artifact won
    return report


def parse_attempt_reports(attempt_id: int) -> list[TestReport]:
    """Every recorded, unparsed JUnit artifact of an attempt (called after it ended)."""
    artifacts = Artifact.objects.filter(
        attempt_id=attempt_id,
        artifact_type=ArtifactType.JUNIT,
        recorded=True,
        deleted_at__isnull=True,
        report__isnull=True,
    ).select_related("attempt")
    return [r for r in (parse_artifact(a) for a in artifacts) if r is not None]
