"""Live pages by conditional polling: each live part of a page has a version (an ETag)
computed in one small query; a poll whose If-None-Match still matches gets a 304 and
costs no rendering. Polling stops once everything shown is final."""

import hashlib
from datetime import timedelta

from django.db.models import OuterRef, Subquery
from django.http import HttpRequest
from django.utils import timezone
from django.utils.http import parse_etags

from apps.artifacts.models import Artifact, TestReport
from apps.runs.choices import RUN_TERMINAL
from apps.runs.models import Run, StateEvent

# Logs and test reports are finalised by tasks just after a run ends: keep polling a
# little longer so the page shows them without a reload.
SETTLE = timedelta(seconds=15)
MAX_IF_NONE_MATCH = 512


def etag(*parts: object) -> str:
    """A strong ETag (quoted) over the parts' text."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]
    return f'"{digest}"'


def matches(request: HttpRequest, tag: str) -> bool:
    """Whether the poll already has this version. Oversized or malformed headers are
    simply not a match (the poll then gets the full answer)."""
    header = request.headers.get("If-None-Match", "")
    if not header or len(header) > MAX_IF_NONE_MATCH:
        return False
    return tag in parse_etags(header)


def _latest(model, **filters) -> Subquery:
    return Subquery(model.objects.filter(**filters).order_by("-id").values("id")[:1])


def run_version(run: Run) -> str:
    """The run page's version: the run row, its newest state event (every transition of
    the run, its jobs, attempts and leases writes one), artifact, test report and rerun."""
    row = (
        Run.objects.filter(pk=run.pk)
        .annotate(
            ev=_latest(StateEvent, run=OuterRef("pk")),
            art=_latest(Artifact, attempt__run=OuterRef("pk")),
            rep=_latest(TestReport, attempt__run=OuterRef("pk")),
            rerun=_latest(Run, rerun_of=OuterRef("pk")),
        )
        .values_list("state", "updated_at", "reason", "report_status", "ev", "art", "rep", "rerun")
        .first()
    )
    return etag("run", run.pk, *(row or ()))


def run_is_final(run: Run) -> bool:
    """Nothing on the run page will change any more (after the settling time)."""
    return run.state in RUN_TERMINAL and (
        run.finished_at is None or timezone.now() - run.finished_at > SETTLE
    )


def runs_version(page) -> str:
    """A page of the runs list: its rows' ids, states and times, and the total."""
    rows = [(r.pk, r.state, r.started_at, r.finished_at) for r in page.object_list]
    return etag("runs", page.number, page.paginator.count, rows)


def runs_are_final(page) -> bool:
    return all(run_is_final(r) for r in page.object_list)
