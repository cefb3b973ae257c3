"""Metrics that web processes count themselves (latency of runner messages, stale
answers), and the registry a scrape reads.

Under gunicorn every worker is its own process with its own counters. When
PROMETHEUS_MULTIPROC_DIR is set (deploy/gunicorn.conf.py sets it before any worker
starts) prometheus-client keeps each process's values in files there and a scrape, served
by any worker, merges them; without it (runserver, tests) the process registry is read.
Gauges derived from the database are computed per scrape (apps/ops/collectors.py), so they
are right whichever worker answers.
"""

import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from apps.ops.collectors import DatabaseCollector
from lib import dispatch

# The lease request long-polls for up to DELTACI_MAX_WAIT_SECONDS (20 s): buckets reach 30 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
STALE_REASONS = ("UNKNOWN_LEASE", "LEASE_EXPIRED", "LEASE_REVOKED", "LEASE_ENDED")

_multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _multiproc_dir:
    os.makedirs(_multiproc_dir, exist_ok=True)

RUNNER_REQUEST_SECONDS = Histogram(
    "deltaci_runner_request_duration_seconds",
    "Time to answer a runner's lease request or heartbeat (a lease request includes its "
    "long-poll wait; code 204 means it waited and got nothing).",
    ["endpoint", "code"],
    buckets=LATENCY_BUCKETS,
)
STALE_ANSWERS = Counter(
    "deltaci_stale_lease_answers",
    "Runner messages answered 409 STALE_LEASE, by endpoint and reason.",
    ["endpoint", "reason"],
)
TASK_DISPATCH_FAILURES = dispatch.FAILURES  # defined beside the code that counts it (lib)


class _ProcessCollector(Collector):
    """The default registry (this process's metrics plus process/platform info)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessCollector())
    registry.register(DatabaseCollector())
    return registry
