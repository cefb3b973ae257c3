"""What the attempt log page and its live tail show: the window of lines to open (the
end, a `?line=`, or the first error), the step outline, server-side search results."""

from django.http import QueryDict
from django.template.loader import render_to_string

from apps.artifacts.models import Artifact, ArtifactType
from apps.runs.models import JobAttempt
from apps.runs.pages import logs as log_pages


def line_number(raw: str | None) -> int | None:
    """A line number from the query string, or None when absent or not one."""
    return int(raw) if raw and raw.isdigit() and len(raw) <= 9 and int(raw) > 0 else None


def log_page(attempt: JobAttempt, query: QueryDict) -> dict:
    log = log_pages.load(attempt)
    first, last = log_pages.around(log, line_number(query.get("line")))
    q = (query.get("q") or "").strip()[: log_pages.MAX_QUERY]
    results, more = log_pages.search(log, q) if q else ([], False)
    expired = (
        not log.size
        and Artifact.objects.filter(
            attempt=attempt, artifact_type=ArtifactType.LOG, deleted_at__isnull=False
        ).exists()
    )
    return {
        "attempt": attempt,
        "run": attempt.run,
        "job": attempt.job,
        "log": log,
        "html": log_pages.render(log, first, last),
        "first": first,
        "last": last,
        "earlier": max(1, first - log_pages.WINDOW),
        "first_error": log.first_error() if attempt.exit_code else None,
        "sections": log.sections,
        "q": q,
        "results": results,
        "more_results": more,
        "expired": expired,
    }


def tail_answer(attempt: JobAttempt, offset: int) -> dict:
    """The live tail's answer: new lines from `offset`, and the attempt's state as the
    badge the page shows."""
    log = log_pages.load(attempt)
    first, end, html = log_pages.tail(log, offset)
    badge = render_to_string("runs/_partials/state.html", {"state": attempt.state})
    return {
        "offset": end,
        "first_line": first,
        "html": str(html),
        "size": log.size,
        "total": log.total,
        "finished": log.finished,
        "state": attempt.state,
        "badge": badge.strip(),
    }
