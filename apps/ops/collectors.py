"""Gauges and counters read from the database at scrape time. The database is the truth
for runs, jobs, attempts and leases, so these are correct whichever web process answers
the scrape and survive restarts; each is one aggregate query on an indexed column.

If the database is down the scrape still answers (process metrics stay visible) with
`deltaci_database_up 0` instead of the database's series.
"""

import logging
from collections.abc import Iterator
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from apps.runners.models import Lease
from apps.runs.choices import AttemptState, FailureClass, JobState, LeaseState, RunState
from apps.runs.models import Job, JobAttempt, Run, StateEvent

log = logging.getLogger(__name__)

# Time from a run's creation to its plan (QUEUED or PLAN_FAILED): includes the wait for
# a worker, which is what a user waits for before the first job can start.
PLANNING_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def _by_state(model, choices) -> dict[str, int]:
    counts = dict.fromkeys(choices.values, 0)
    for row in model.objects.order_by().values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    return counts


def _state_gauge(name: str, doc: str, model, choices) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["state"])
    for state, n in sorted(_by_state(model, choices).items()):
        family.add_metric([state], n)
    return family


def _planning_histogram() -> HistogramMetricFamily:
    took = ExpressionWrapper(F("planned_at") - F("created_at"), output_field=DurationField())
    per_bucket = {
        f"le_{i}": Count("id", filter=Q(took__lte=timedelta(seconds=b)))
        for i, b in enumerate(PLANNING_BUCKETS)
    }
    agg = (
        Run.objects.order_by()
        .filter(planned_at__isnull=False)
        .annotate(took=took)
        .aggregate(n=Count("id"), total=Sum("took"), **per_bucket)
    )
    buckets = [(str(b), agg[f"le_{i}"]) for i, b in enumerate(PLANNING_BUCKETS)]
    buckets.append(("+Inf", agg["n"]))
    total = agg["total"]
    seconds = total.total_seconds() if isinstance(total, timedelta) else float(total or 0) / 1e6
    return HistogramMetricFamily(
        "deltaci_run_planning_duration_seconds",
        "Time from a run's creation to its plan (includes the wait for a worker).",
        buckets=buckets,
        sum_value=max(seconds, 0.0),
    )


def database_metrics() -> Iterator[Metric]:
    yield _state_gauge("deltaci_runs", "Runs by state.", Run, RunState)
    yield _state_gauge("deltaci_jobs", "Jobs by state.", Job, JobState)
    yield _state_gauge("deltaci_attempts", "Job attempts by state.", JobAttempt, AttemptState)
    yield _state_gauge("deltaci_leases", "Leases by state.", Lease, LeaseState)

    failures = CounterMetricFamily(
        "deltaci_attempt_failures",
        "Attempts that ended unsuccessfully, by failure class.",
        labels=["failure_class"],
    )
    counts = dict.fromkeys(FailureClass.values, 0)
    rows = (
        JobAttempt.objects.order_by()
        .exclude(failure_class="")
        .values("failure_class")
        .annotate(n=Count("id"))
    )
    for row in rows:
        counts[row["failure_class"]] = row["n"]
    for cls, n in sorted(counts.items()):
        failures.add_metric([cls], n)
    yield failures

    expired = StateEvent.objects.filter(kind="lease", to_state=LeaseState.EXPIRED).count()
    yield CounterMetricFamily(
        "deltaci_lease_expirations",
        "Leases the supervisor expired (TTL passed or never acknowledged).",
        value=expired,
    )

    queued = JobAttempt.objects.order_by().filter(state=AttemptState.QUEUED)
    q = queued.aggregate(n=Count("id"), oldest=Min("queued_at"))
    yield GaugeMetricFamily(
        "deltaci_queue_depth", "Attempts waiting for a runner (QUEUED).", value=q["n"]
    )
    age = (timezone.now() - q["oldest"]).total_seconds() if q["oldest"] else 0.0
    yield GaugeMetricFamily(
        "deltaci_queue_oldest_age_seconds",
        "Age of the oldest QUEUED attempt (0 when the queue is empty).",
        value=max(age, 0.0),
    )
    yield _planning_histogram()


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(database_metrics())
        except DatabaseError as exc:
            log.warning("metrics: database unavailable", extra={"error": type(exc).__name__})
            metrics = []
        yield GaugeMetricFamily(
            "deltaci_database_up",
            "1 when the database answered this scrape's queries.",
            value=1 if metrics else 0,
        )
        yield from metrics
