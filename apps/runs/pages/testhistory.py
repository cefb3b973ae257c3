"""Tests over history: flakiness across a commit's attempts and reruns, each failure's
standing on the base branch, and a repository's test page — each in a fixed number of
queries whatever the history's length.

A test is identified by TestResult.test_key (repository, job, class, name). It is flaky on
a commit when it both failed and passed there (tries in one report, attempts of a job,
reruns of the commit). A failure is *already failing on the base branch* when the base's
newest result of that test failed, *new* otherwise; the base is the run(s) of the run's
base commit, else the newest BASE_WINDOW runs of the default branch before it, counting
only runs with test reports (a diff-aware run may skip the job that holds the test).
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Case, Count, Exists, IntegerField, Max, OuterRef, Q, Sum, Value, When

from apps.artifacts.models import TestReport, TestResult, TestStatus
from apps.runs.models import Repository, Run

BAD = (TestStatus.FAILED, TestStatus.ERROR)
BASE_WINDOW = 10
HISTORY_RUNS = 50  # the repository page looks at this many newest runs with tests
LAST_RESULTS = 20  # results shown per test
TESTS_PER_PAGE = 50
NEW, ON_BASE = "new", "failing on base"


def _flag_of(condition: Q) -> Case:
    return Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


def same_commit_runs(run: Run) -> list[int]:
    """Every run of the run's repository on the run's commit (reruns included)."""
    return list(
        Run.objects.filter(repository_id=run.repository_id, commit_sha=run.commit_sha)
        .order_by()
        .values_list("pk", flat=True)
    )


def _has_tests():
    return Exists(TestReport.objects.filter(attempt__run=OuterRef("pk"), error=""))


def base_runs(run: Run) -> list[Any]:
    default = run.repository.default_branch
    branch = Q(ref__in=(default, f"refs/heads/{default}"), created_at__lte=run.created_at)
    branch &= ~Q(commit_sha=run.commit_sha)
    wanted = branch | Q(commit_sha=run.base_sha) if run.base_sha else branch
    rows = list(
        Run.objects.filter(repository_id=run.repository_id)
        .filter(wanted, _has_tests())
        .exclude(pk=run.pk)
        .annotate(exact=_flag_of(Q(commit_sha=run.base_sha)) if run.base_sha else Value(0))
        .order_by("-exact", "-created_at", "-id")[:BASE_WINDOW]
    )
    exact = [r for r in rows if r.exact]
    return exact or rows


def base_marks(run: Run, failing: list[TestResult]) -> Run | None:
    """Set `base_mark` (NEW or ON_BASE) on each failing result; the base run compared
    with, or None (no base with test results: no marks)."""
    for result in failing:
        result.base_mark = ""  # type: ignore[attr-defined]  # shown by the page
    if not failing:
        return None
    runs = base_runs(run)
    if not runs:
        return None
    rank = {r.pk: i for i, r in enumerate(runs)}  # 0 = the exact base or the newest
    newest: dict[int, tuple[tuple[int, int], str]] = {}
    rows = TestResult.objects.filter(
        test_key__in={r.test_key for r in failing}, run_id__in=list(rank)
    ).values_list("test_key", "status", "run_id", "attempt__attempt_number")
    for key, status, run_id, number in rows:
        order = (rank[run_id], -number)
        if key not in newest or order < newest[key][0]:
            newest[key] = (order, status)
    for result in failing:
        got = newest.get(result.test_key)
        result.base_mark = ON_BASE if got and got[1] in BAD else NEW  # type: ignore[attr-defined]
    return runs[0]


# -- the repository's test page ---------------------------------------------------------
@dataclass
class TestRow:
    __test__ = False

    key: int
    job: str = ""
    suite: str = ""
    classname: str = ""
    name: str = ""
    commits: int = 0
    flaky_commits: int = 0
    results: int = 0
    failures: int = 0
    last: list[dict] = field(default_factory=list)  # newest first
    durations: list[float] = field(default_factory=list)  # oldest first

    @property
    def flaky_rate(self) -> float:
        return self.flaky_commits / self.commits if self.commits else 0.0

    @property
    def trend(self) -> str:
        """Points of an SVG polyline (100 x 20) of the durations, oldest at the left."""
        values = self.durations
        if len(values) < 2:
            return ""
        top = max(values) or 1.0
        step = 100 / (len(values) - 1)
        return " ".join(f"{i * step:.1f},{20 - 18 * v / top:.1f}" for i, v in enumerate(values))


_OUTER = (
    "SELECT test_key, COUNT(*) AS commits,"
    " SUM(CASE WHEN (bad = 1 AND good = 1) OR fl = 1 THEN 1 ELSE 0 END) AS flaky,"
    " SUM(n), SUM(nbad), MAX(last) FROM ({inner}) per_commit GROUP BY test_key"
    " ORDER BY 1.0 * SUM(CASE WHEN (bad = 1 AND good = 1) OR fl = 1 THEN 1 ELSE 0 END)"
    " / COUNT(*) DESC, SUM(nbad) DESC, MAX(last) DESC LIMIT %s OFFSET %s"
)


def _flag(condition: Q) -> Max:
    return Max(_flag_of(condition))


def _aggregate(window: list[int], query: str, limit: int, offset: int) -> list[tuple]:
    """Per test over the window: commits, flaky commits, results, failures — grouped per
    (test, commit) first, then per test, sorted by flaky rate, failures, recency."""
    inner: Any = TestResult.objects.filter(run_id__in=window)
    if query:
        inner = inner.filter(Q(name__icontains=query) | Q(classname__icontains=query))
    inner = (
        inner.values("test_key", "run__commit_sha")
        .annotate(
            bad=_flag(Q(status__in=BAD)),
            good=_flag(Q(status=TestStatus.PASSED)),
            fl=_flag(Q(flaky=True)),
            n=Count("id"),
            nbad=Sum(
                Case(When(status__in=BAD, then=Value(1)), default=Value(0)),
                output_field=IntegerField(),
            ),
            last=Max("id"),
        )
        .order_by()
    )
    sql, params = inner.query.sql_with_params()  # the ORM's SQL; values are parameters
    outer = _OUTER.replace("{inner}", sql)
    with connection.cursor() as cursor:
        cursor.execute(outer, (*params, limit, offset))
        return cursor.fetchall()


def repository_tests(repository: Repository, *, page: int = 1, query: str = "") -> dict:
    """The repository's tests over its newest HISTORY_RUNS runs with test reports: five
    queries whatever the number of runs and tests."""
    window = list(
        Run.objects.filter(repository=repository)
        .filter(_has_tests())
        .order_by("-id")
        .values_list("pk", flat=True)[:HISTORY_RUNS]
    )
    tests = TestResult.objects.filter(run_id__in=window)
    if query:
        tests = tests.filter(Q(name__icontains=query) | Q(classname__icontains=query))
    count = tests.values("test_key").distinct().count() if window else 0
    pages = max(1, -(-count // TESTS_PER_PAGE))
    page = min(max(1, page), pages)
    rows = _aggregate(window, query, TESTS_PER_PAGE, (page - 1) * TESTS_PER_PAGE) if count else []
    by_key = {
        key: TestRow(key, commits=c, flaky_commits=f, results=n, failures=b)
        for key, c, f, n, b, _ in rows
    }
    history = (
        TestResult.objects.filter(test_key__in=list(by_key), run_id__in=window)
        .order_by("-run_id", "-attempt__attempt_number", "-id")
        .values_list(
            "test_key",
            "status",
            "flaky",
            "duration",
            "run_id",
            "attempt__attempt_number",
            "job__name",
            "suite",
            "classname",
            "name",
            "run__commit_sha",
        )
    )
    for key, status, flaky, dur, run_id, number, job, suite, cls, name, sha in history:
        row = by_key[key]
        if not row.last:
            row.job, row.suite, row.classname, row.name = job, suite, cls, name
        if len(row.last) < LAST_RESULTS:
            row.last.append(
                {
                    "status": status,
                    "flaky": flaky,
                    "run": run_id,
                    "attempt": number,
                    "duration": dur,
                    "sha": sha,
                }
            )
            if dur is not None:
                row.durations.insert(0, dur)
    return {
        "repository": repository,
        "tests": [by_key[r[0]] for r in rows],
        "count": count,
        "page": page,
        "pages": pages,
        "query": query,
        "runs": len(window),
    }
