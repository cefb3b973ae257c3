"""Queue depth for autoscalers (KEDA's metrics-api scaler on Kubernetes): how many
queued attempts a runner of one environment with one label set could take right now.

Called every few seconds per runner pool, so it is one statement on the attempts'
(state, run_created_at, id) index, joined to its job, run and repository by primary key,
and it stops counting at QUEUE_DEPTH_CAP (an autoscaler never starts more pods than its
maximum anyway). It counts what the claim could match by environment and labels; the
concurrency limits and the image policy are applied only when a runner asks for a lease,
so a pod started for a queued attempt may still find nothing (deploy/README.md).
"""

import json
from collections.abc import Iterable

from django.db import connection

from apps.runners.dispatch import _matches
from apps.runs.choices import AttemptState
from apps.runs.models import Job, JobAttempt, Repository, Run
from lib.db import fetch_prepared

QUEUE_DEPTH_CAP = 1000

_COUNT = f"""
SELECT COUNT(*) FROM (
  SELECT 1
  FROM {JobAttempt._meta.db_table} a
  JOIN {Job._meta.db_table} j ON j."id" = a."job_id"
  JOIN {Run._meta.db_table} r ON r."id" = a."run_id"
  JOIN {Repository._meta.db_table} p ON p."id" = r."repository_id"
  WHERE a."state" = 'QUEUED' AND p."environment" = %(environment)s
    AND (j."spec" -> 'runs_on' IS NULL OR j."spec" -> 'runs_on' <@ %(labels)s::jsonb)
  LIMIT %(cap)s
) AS queued
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


def queue_depth(environment: str, labels: Iterable[str]) -> int:
    """Queued attempts in `environment` whose `runs_on` labels are all in `labels`,
    counted up to QUEUE_DEPTH_CAP. One query on every database."""
    labels = sorted(set(labels))
    if connection.vendor == "postgresql":
        params = {"environment": environment, "labels": json.dumps(labels), "cap": QUEUE_DEPTH_CAP}
        return fetch_prepared(_COUNT, params)[0][0]
    # SQLite (embedded mode) cannot test JSON containment: read the labels of the queued
    # attempts (bounded) and match them as the claim does.
    runs_on = JobAttempt.objects.filter(
        state=AttemptState.QUEUED, run__repository__environment=environment
    ).values_list("job__spec__runs_on", flat=True)[: QUEUE_DEPTH_CAP * 10]
    caps = frozenset(labels)
    return min(sum(1 for value in runs_on if _matches(value, caps)), QUEUE_DEPTH_CAP)
