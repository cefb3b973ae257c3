"""Thin Celery wrappers for GitHub reporting: ids in, one action, retries only for
what GitHub says is transient (5xx, rate limits, network), with backoff."""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from apps.runs.choices import JOB_ACTIVE, RUN_TERMINAL
from apps.runs.models import Repository, Run
from apps.vcs import auth, github, reporting
from apps.vcs.models import RunReport
from lib.dispatch import dispatch
from lib.logging import bind, unbind

log = logging.getLogger(__name__)
MAX_RETRIES = 6
MAX_BACKOFF = 600
RECONCILE_MAX_ATTEMPTS = 30


def backoff(retries: int, retry_after: float | None) -> float:
    """GitHub's Retry-After when it gave one, else exponential with jitter."""
    if retry_after is not None:
        return min(float(retry_after), MAX_BACKOFF)
    return min(5 * 2**retries, MAX_BACKOFF) * random.uniform(0.8, 1.2)  # noqa: S311


@shared_task(bind=True, name="deltaci.report_run", acks_late=True, max_retries=MAX_RETRIES)
def report_run(self, run_id: int, state: str = "") -> str:
    """`state` is what triggered the task, for the logs only: the action reports the
    run's current state from the database. Transient failures are retried with
    backoff; when tasks run eagerly (no worker to come back later) they are retried at
    once, as Celery's own eager retries are."""
    token = bind(run_id=run_id, reported_for=state or None)
    eager = bool(self.request.is_eager)
    try:
        for extra in range(1 + MAX_RETRIES if eager else 1):
            retries = self.request.retries + extra
            try:
                return reporting.do_report_run(run_id)
            except github.GitHubTransient as exc:
                if retries >= MAX_RETRIES:
                    reporting.note_failure(run_id, exc, final=True)
                    return "gave up"
                reporting.note_failure(run_id, exc, final=False)
                if not eager:
                    raise self.retry(countdown=backoff(retries, exc.retry_after)) from None
            except github.GitHubError as exc:
                reporting.note_failure(run_id, exc, final=True)
                return "failed"
        return "gave up"
    finally:
        unbind(token)


@shared_task(name="deltaci.reconcile_reports", expires=120)
def reconcile_reports() -> int:
    """Reports whose task was lost (broker down, worker killed mid-call) or that failed
    are dispatched again: finished GitHub runs whose final state was never published,
    and reports left dirty. Each run gets RECONCILE_MAX_ATTEMPTS publish attempts in
    all; after that its failure stays as it is, visible on the run."""
    now = timezone.now()
    quiet = now - timedelta(minutes=2)
    recent = now - timedelta(days=1)
    unreported = (
        Run.objects.filter(
            repository__github_full_name__gt="",
            state__in=RUN_TERMINAL,
            reported_at__isnull=True,
            finished_at__range=(recent, quiet),
        )
        .exclude(report_status="disabled")
        .exclude(vcs_report__attempts__gte=RECONCILE_MAX_ATTEMPTS)
        .exclude(vcs_report__busy_until__gt=now)
    )
    dirty = RunReport.objects.filter(
        dirty=True,
        attempts__lt=RECONCILE_MAX_ATTEMPTS,
        updated_at__lt=quiet,
        run__created_at__gte=recent,
    ).exclude(busy_until__gt=now)
    ids = set(unreported.values_list("pk", flat=True)[:200])
    ids |= set(dirty.values_list("run_id", flat=True)[:200])
    return sum(dispatch(report_run, run_id, "reconcile") for run_id in sorted(ids))


@shared_task(name="deltaci.refresh_runner_tokens", expires=60)
def refresh_runner_tokens(repository_id: int | None = None) -> int:
    """Runner clone tokens renewed before they expire, for the private GitHub repositories
    that have jobs waiting or running (planning mints the first one; a lease that found
    none asks for its repository's); a lease only reads the stored token. Returns how many
    were minted."""
    if auth.mode() != "app":
        return 0
    fresh = auth.lasting_runner_tokens(timezone.now()).values("repository_id")
    due = (
        Repository.objects.filter(github_full_name__gt="", runs__jobs__state__in=JOB_ACTIVE)
        .exclude(visibility="public")
        .exclude(pk__in=fresh)
        .distinct()
    )
    if repository_id is not None:
        due = due.filter(pk=repository_id)
    return sum(auth.refresh_runner_clone_token(repo) for repo in due[:200])
