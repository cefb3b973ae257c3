"""Test results of a run for its page: totals, the failing tests with their messages, and
flaky marks — four queries whatever the number of jobs, attempts and tests.

Totals count each job's final report (its latest attempt that produced one), so a test
retried three times is counted once. A test that failed in one attempt and passed in a
later attempt of the same job is flaky.
"""

from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef

from apps.artifacts.models import TestReport, TestResult, TestStatus
from apps.runs.models import Run

MAX_FAILING_SHOWN = 100
_BAD = (TestStatus.FAILED, TestStatus.ERROR)


@dataclass
class TestSummary:
    __test__ = False  # not a pytest class

    totals: dict[str, int] = field(default_factory=dict)
    failing: list[TestResult] = field(default_factory=list)
    flaky: int = 0
    more: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)  # (artifact name, why)
    reports: int = 0

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    @property
    def still_failing(self) -> int:
        return sum(1 for r in self.failing if not r.flaky)


def summarize(run: Run) -> TestSummary:
    summary = TestSummary()
    reports = list(
        TestReport.objects.filter(attempt__run=run).values_list(
            "pk", "attempt__job_id", "attempt__attempt_number", "error", "artifact__name"
        )
    )
    if not reports:
        return summary
    summary.reports = len(reports)
    final: dict[int, int] = {}
    for _pk, job_id, number, error, name in reports:
        if error:
            summary.errors.append((name, error))
        if not error and number >= final.get(job_id, 0):
            final[job_id] = number
    final_reports = [
        pk for pk, job_id, number, error, _ in reports if not error and final.get(job_id) == number
    ]
    counts = dict(
        TestResult.objects.filter(report_id__in=final_reports)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    summary.totals = {s: counts.get(s, 0) for s in TestStatus.values}
    passed_later = TestResult.objects.filter(
        job_id=OuterRef("job_id"),
        classname=OuterRef("classname"),
        name=OuterRef("name"),
        status=TestStatus.PASSED,
        attempt__attempt_number__gt=OuterRef("attempt__attempt_number"),
    )
    bad = list(
        TestResult.objects.filter(run=run, status__in=_BAD)
        .annotate(flaky=Exists(passed_later))
        .select_related("job", "attempt")
        .order_by("job__position", "job_id", "-attempt__attempt_number", "id")[
            : MAX_FAILING_SHOWN * 3
        ]
    )
    seen: set[tuple[int, str, str]] = set()
    for result in bad:  # the latest failure of each test, newest attempt first per job
        key = (result.job_id, result.classname, result.name)
        if key in seen:
            continue
        seen.add(key)
        if len(summary.failing) >= MAX_FAILING_SHOWN:
            summary.more = True
            break
        summary.failing.append(result)
    summary.more = summary.more or len(bad) == MAX_FAILING_SHOWN * 3
    summary.failing.sort(key=lambda r: (r.flaky, r.job.position, r.job_id, r.classname, r.name))
    failed_before = TestResult.objects.filter(
        job_id=OuterRef("job_id"),
        classname=OuterRef("classname"),
        name=OuterRef("name"),
        status__in=_BAD,
        attempt__attempt_number__lt=OuterRef("attempt__attempt_number"),
    )
    summary.flaky = (
        TestResult.objects.filter(run=run, status=TestStatus.PASSED)
        .filter(Exists(failed_before))
        .values("job_id", "classname", "name")
        .distinct()
        .count()
    )
    return summary
