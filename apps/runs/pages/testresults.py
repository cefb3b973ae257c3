"""Test results of a run for its page: totals, the failing tests with their messages,
flaky marks, the slowest tests and each failure's standing on the base branch — a fixed
number of queries whatever the number of jobs, attempts and tests.

Totals count each job's final report (its latest attempt that produced one), so a test
retried three times is counted once, plus the totals of suites that list no test cases.
A test is flaky when it failed and passed on the same commit: tries inside one report,
attempts of a job, or reruns of the commit (apps/runs/pages/testhistory.py).
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, cast

from django.db.models import Count, Exists, OuterRef, Q

from apps.artifacts.models import TestReport, TestResult, TestStatus
from apps.runs.models import Run
from apps.runs.pages.testhistory import BAD, base_marks, same_commit_runs

MAX_FAILING_SHOWN = 100
SLOWEST_SHOWN = 10

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # the stubs' model-with-annotations type

    class _OnCommit(TypedDict):
        passed_on_commit: bool  # the query's annotation

    class _Shown(_OnCommit):
        is_flaky: bool  # set by summarize(), read by the page

    FailingResult = WithAnnotations[TestResult, _Shown]


@dataclass
class TestSummary:
    __test__ = False  # not a pytest class

    totals: dict[str, int] = field(default_factory=dict)
    failing: list["FailingResult"] = field(default_factory=list)
    flaky: int = 0
    more: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)  # (artifact name, why)
    truncated: list[tuple[str, int, int]] = field(default_factory=list)  # (name, kept, of)
    reports: int = 0
    slowest: list[TestResult] = field(default_factory=list)
    duration: float | None = None  # the final reports' own durations, summed
    base: Run | None = None  # the base-branch run failures are compared with
    from_suite_totals: int = 0

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    @property
    def still_failing(self) -> int:
        return sum(1 for r in self.failing if not r.is_flaky)


def _final_reports(run: Run, summary: TestSummary) -> list[int]:
    reports = list(
        TestReport.objects.filter(attempt__run=run).values_list(
            "pk",
            "attempt__job_id",
            "attempt__attempt_number",
            "error",
            "artifact__name",
            "truncated",
            "total",
            "seen",
            "duration",
            "suite_totals",
        )
    )
    summary.reports = len(reports)
    final: dict[int, int] = {}
    for _pk, job_id, number, error, name, truncated, total, seen, *_ in reports:
        if error:
            summary.errors.append((name, error))
        elif number >= final.get(job_id, 0):
            final[job_id] = number
        if truncated:
            summary.truncated.append((name, total, max(seen, total)))
    chosen = [r for r in reports if not r[3] and final.get(r[1]) == r[2]]
    durations = [r[8] for r in chosen if r[8] is not None]
    summary.duration = sum(durations) if durations else None
    for r in chosen:
        for status, n in (r[9] or {}).items():
            if status in TestStatus.values and isinstance(n, int):
                summary.totals[status] = summary.totals.get(status, 0) + n
                summary.from_suite_totals += n
    return [r[0] for r in chosen]


def _failing(result: "WithAnnotations[TestResult, _OnCommit]") -> "FailingResult":
    shown = cast("FailingResult", result)  # the stubs cannot see attributes set on a row
    shown.is_flaky = result.flaky or result.passed_on_commit
    return shown


def summarize(run: Run) -> TestSummary:
    summary = TestSummary()
    summary.totals = dict.fromkeys(TestStatus.values, 0)
    final_reports = _final_reports(run, summary)
    if not summary.reports:
        return summary
    counts = (
        TestResult.objects.filter(report_id__in=final_reports)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    for status, n in counts:
        summary.totals[status] += n
    same = same_commit_runs(run)
    passed_on_commit = TestResult.objects.filter(
        test_key=OuterRef("test_key"), run_id__in=same, status=TestStatus.PASSED
    )
    failed_on_commit = TestResult.objects.filter(
        test_key=OuterRef("test_key"), run_id__in=same, status__in=BAD
    )
    shown = list(
        TestResult.objects.filter(run=run)
        .filter(Q(status__in=BAD) | Q(flaky=True))
        .annotate(passed_on_commit=Exists(passed_on_commit))
        .select_related("job", "attempt")
        .order_by("job__position", "job_id", "-attempt__attempt_number", "id")[
            : MAX_FAILING_SHOWN * 3
        ]
    )
    seen: set[tuple[int, int]] = set()
    for result in shown:  # the latest failure of each test, newest attempt first per job
        key = (result.job_id, result.test_key)
        if key in seen:
            continue
        seen.add(key)
        if len(summary.failing) >= MAX_FAILING_SHOWN:
            summary.more = True
            break
        summary.failing.append(_failing(result))
    summary.more = summary.more or len(shown) == MAX_FAILING_SHOWN * 3
    summary.failing.sort(key=lambda r: (r.is_flaky, r.job.position, r.job_id, r.classname, r.name))
    summary.base = base_marks(run, [r for r in summary.failing if not r.is_flaky])
    summary.flaky = (
        TestResult.objects.filter(run=run)
        .alias(has_failed=Exists(failed_on_commit), has_passed=Exists(passed_on_commit))
        .filter(
            Q(flaky=True)
            | Q(status=TestStatus.PASSED, has_failed=True)
            | Q(status__in=BAD, has_passed=True)
        )
        .values("test_key")
        .distinct()
        .count()
    )
    summary.slowest = list(
        TestResult.objects.filter(report_id__in=final_reports, duration__isnull=False)
        .select_related("job")
        .order_by("-duration", "id")[:SLOWEST_SHOWN]
    )
    return summary
