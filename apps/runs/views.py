"""Run pages for teams. Thin: find what the user may see (apps/runs/access — anything
else is a 404, never a 403, so a private repository leaks not even its existence),
gather it with apps/runs/pages, render. Writes are POST with CSRF and call one action."""

import re
import secrets
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.artifacts import logs
from apps.audit.actions import actor_name
from apps.runs import access
from apps.runs.actions import RunError, do_rerun_run
from apps.runs.cancelling import do_cancel_run
from apps.runs.models import JobAttempt, Run
from apps.runs.pages import live
from apps.runs.pages import logs as log_pages
from apps.runs.pages.detail import run_page
from apps.runs.pages.forms import RunFilterForm
from apps.runs.pages.logpage import line_number, log_page, tail_answer
from apps.runs.pages.logs import MAX_OFFSET
from apps.runs.pages.repositories import repository_rows
from apps.runs.pages.testhistory import repository_tests
from lib.api_errors import error_json

RUNS_PER_PAGE = 25
_NONCE = re.compile(r"^[0-9a-f]{16,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _run(request, run_id: int) -> Run:
    return get_object_or_404(
        access.visible_runs(request.user).select_related("repository", "rerun_of"), pk=run_id
    )


def _attempt(request, run_id: int, attempt_id: int) -> JobAttempt:
    run = _run(request, run_id)
    attempt = get_object_or_404(
        JobAttempt.objects.select_related("job", "lease__runner"), pk=attempt_id, run=run
    )
    attempt.run = run
    return attempt


@require_GET
def repositories(request):
    return render(request, "runs/repositories.html", {"rows": repository_rows(request.user)})


@require_GET
def repository_test_history(request, name: str):
    repository = get_object_or_404(access.visible_repositories(request.user), name=name)
    raw = request.GET.get("page", "1")
    page = int(raw) if raw.isdigit() and len(raw) <= 6 else 1
    query = _CONTROL.sub("", request.GET.get("q", "")).strip()[:200]
    context = repository_tests(repository, page=page, query=query)
    return render(request, "runs/repository_tests.html", context)


def _run_list_page(request) -> dict:
    form = RunFilterForm(request.GET or None, user=request.user)
    qs = form.apply(access.visible_runs(request.user).select_related("repository"))
    page = Paginator(qs.order_by("-created_at", "-id"), RUNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return {"form": form, "page": page, "query": query.urlencode()}


def _live(request, version: str, template: str, context: Callable[[], dict]) -> HttpResponse:
    """A live part of a page, or 304 (nothing rendered) when the poll has this version."""
    response: HttpResponse
    if live.matches(request, version):
        response = HttpResponseNotModified()
    else:
        response = render(request, template, {**context(), "etag": version})
    response["ETag"] = version
    response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
def run_list(request):
    context = _run_list_page(request)
    page = context["page"]
    context.update(etag=live.runs_version(page), final=live.runs_are_final(page))
    return render(request, "runs/run_list.html", context)


@require_GET
def run_list_live(request):
    """The runs list's table for the page's poll (same filters and page)."""
    context = _run_list_page(request)
    page = context["page"]
    context["final"] = live.runs_are_final(page)
    return _live(request, live.runs_version(page), "runs/_partials/run_rows.html", lambda: context)


def _run_context(request, run: Run) -> dict:
    context = run_page(run, request.user)
    context["nonce"] = secrets.token_hex(16)  # one rerun per form, however often posted
    return context


@require_GET
def run_detail(request, run_id: int):
    run = _run(request, run_id)
    version = live.run_version(run)  # before the content: a change between is not lost
    context = _run_context(request, run)
    context.update(etag=version, final=live.run_is_final(run))
    return render(request, "runs/run_detail.html", context)


@require_GET
def run_live(request, run_id: int):
    """The run page's changing part for its poll; 304 while nothing changed."""
    run = _run(request, run_id)

    def context() -> dict:
        return {**_run_context(request, run), "final": live.run_is_final(run)}

    return _live(request, live.run_version(run), "runs/_partials/run_live.html", context)


@require_POST
def cancel_run(request, run_id: int):
    run = _run(request, run_id)
    if not access.can_act(request.user, run.repository, "cancel_run"):
        raise PermissionDenied("you may not cancel runs of this repository")
    if do_cancel_run(run, actor=actor_name(request.user)):
        messages.success(request, f"Cancellation of run {run.pk} requested.")
    else:
        messages.error(request, f"Run {run.pk} is {run.state} and cannot be cancelled.")
    return redirect("run-detail", run_id=run.pk)


@require_POST
def rerun_run(request, run_id: int):
    run = _run(request, run_id)
    if not access.can_act(request.user, run.repository, "rerun_run"):
        raise PermissionDenied("you may not rerun runs of this repository")
    scope = request.POST.get("scope", "all")
    if scope not in ("all", "failed"):
        return HttpResponse("scope must be all or failed", status=400, content_type="text/plain")
    nonce = request.POST.get("nonce", "")
    try:
        new, _ = do_rerun_run(
            run,
            failed_only=scope == "failed",
            actor=actor_name(request.user),
            idempotency_key=nonce if _NONCE.match(nonce) else "",
        )
    except RunError as exc:
        messages.error(request, str(exc))
        return redirect("run-detail", run_id=run.pk)
    messages.success(
        request,
        f"Run {new.pk} reruns {'the failed jobs of ' if scope == 'failed' else ''}run {run.pk}.",
    )
    return redirect("run-detail", run_id=new.pk)


@require_GET
def attempt_log(request, run_id: int, attempt_id: int):
    attempt = _attempt(request, run_id, attempt_id)
    return render(request, "runs/attempt_log.html", log_page(attempt, request.GET))


@require_GET
def attempt_log_lines(request, run_id: int, attempt_id: int):
    """Lines `?from=`..`?to=` of the log as HTML, for the page's windows."""
    first, last = line_number(request.GET.get("from")), line_number(request.GET.get("to"))
    if first is None or last is None or not 0 <= last - first < log_pages.MAX_LINES:
        return JsonResponse(
            {"error": f"from and to must be line numbers at most {log_pages.MAX_LINES} apart"},
            status=400,
        )
    log = log_pages.load(_attempt(request, run_id, attempt_id))
    last = min(last, log.total)
    return JsonResponse(
        {
            "first": first,
            "last": last,
            "total": log.total,
            "html": str(log_pages.render(log, first, last)),
        }
    )


@require_GET
def attempt_log_tail(request, run_id: int, attempt_id: int):
    """The live tail's poll: lines from `?offset=` as escaped HTML, and the next offset;
    304 while neither the attempt's state nor its log changed since the last poll."""
    raw = request.GET.get("offset", "0")
    if not raw.isdigit() or len(raw) > 15 or int(raw) > MAX_OFFSET:
        return error_json("INVALID_REQUEST", "offset must be a non-negative byte offset")
    attempt = _attempt(request, run_id, attempt_id)

    def version(offset: int) -> str:
        return live.etag("log", attempt.pk, attempt.state, attempt.log_size, offset)

    response: HttpResponse
    if live.matches(request, version(int(raw))):
        response = HttpResponseNotModified()
        response["ETag"] = version(int(raw))
    else:
        answer = tail_answer(attempt, int(raw))
        response = JsonResponse(answer)
        response["ETag"] = version(answer["offset"])  # what the next poll will send
    response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
def attempt_log_raw(request, run_id: int, attempt_id: int):
    """The whole log as a plain-text download, never rendered by the browser."""
    attempt = _attempt(request, run_id, attempt_id)
    data = logs.read(attempt)
    if not data:
        raise Http404("no log (not written yet, or deleted by retention)")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", attempt.job.name)[:80] or "job"
    response = HttpResponse(data, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="run-{attempt.run_id}-{name}-{attempt.attempt_number}.log"'
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response
