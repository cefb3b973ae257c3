"""JUnit XML test reports: parsed once per artifact into TestResult rows.

The parser (apps/artifacts/junit.py) streams the stored object, so a report of any size is
read with bounded memory: the first MAX_CASES test cases are kept and the rest counted.
A report that breaks a rule (hostile XML, not JUnit) is recorded as a parse error on its
TestReport and never raises out of `parse_attempt_reports`.
"""

import logging

from django.db import IntegrityError, transaction

from apps.artifacts import storage
from apps.artifacts.junit import (  # noqa: F401 - the parser's limits, used by tests
    MAX_CASES,
    MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    Case,
    Parsed,
    ReportRejected,
    parse,
)
from apps.artifacts.models import Artifact, ArtifactType, TestReport, TestResult, test_key

log = logging.getLogger(__name__)


def _parse_stored(artifact: Artifact) -> Parsed:
    try:
        fh = storage.open_for_read(artifact.key)
    except (FileNotFoundError, ValueError) as exc:
        raise ReportRejected(f"report could not be read from the store: {exc}") from None
    # other OSErrors (the store is down) propagate: the task retries, nothing is recorded
    with fh:
        return parse(fh)


def parse_artifact(artifact: Artifact) -> TestReport | None:
    """Parse one JUnit artifact into a TestReport and its TestResults; None when it was
    already parsed (a repeat of the task changes nothing)."""
    if TestReport.objects.filter(artifact=artifact).exists():
        return None
    attempt = artifact.attempt
    try:
        parsed, error = _parse_stored(artifact), ""
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
                seen=parsed.seen,
                duration=parsed.duration,
                suite_totals=parsed.suite_totals,
            )
            repository_id, job_name = attempt.run.repository_id, attempt.job.name
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
                        flaky=c.flaky,
                        tries=min(c.tries, 32767),
                        test_key=test_key(repository_id, job_name, c.suite, c.classname, c.name),
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
    ).select_related("attempt__job", "attempt__run")
    return [r for r in (parse_artifact(a) for a in artifacts) if r is not None]
