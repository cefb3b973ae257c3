"""Publishing a run's CURRENT state to GitHub: one check run per run (a commit status
when only a personal token is configured — GitHub keeps check runs for Apps), and on
final states one comment per pull request, created once and edited in place.

Idempotent: what was published is remembered (ids and a digest), a create whose answer
was lost is looked up before creating again, and reporters of one run are serialised
by a short claim on its RunReport instead of a row lock held across HTTP calls. The
task is told which state triggered it but always reports what the database says now,
so tasks running late or out of order never move a check run backwards.
"""

import logging
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from apps.runs.models import Run
from apps.vcs import auth, github, summary
from apps.vcs.models import PullRequestComment, RunReport

log = logging.getLogger(__name__)
CLAIM_FOR = timedelta(minutes=2)
MAX_ROUNDS = 5


class Busy(github.GitHubTransient):
    """Another worker is publishing the same comment: try again shortly."""


def _set_run(run_id: int, **fields) -> None:
    Run.objects.filter(pk=run_id).update(**fields)


def _claim(model, pk: int, **also) -> bool:
    now = timezone.now()
    free = Q(busy_until__isnull=True) | Q(busy_until__lt=now)
    return bool(
        model.objects.filter(free, pk=pk).update(busy_until=now + CLAIM_FOR, updated_at=now, **also)
    )


def do_report_run(run_id: int) -> str:
    """Bring GitHub up to date with the run. Returns what happened; raises
    github.GitHubError (permanent) or GitHubTransient (retry) when GitHub refused."""
    run = Run.objects.select_related("repository").filter(pk=run_id).first()
    if run is None or not run.repository.github_full_name:
        return "not a GitHub run"
    if not auth.mode():
        _set_run(run_id, report_status="disabled", report_error="GitHub is not configured")
        return "GitHub is not configured"
    report, _ = RunReport.objects.get_or_create(run_id=run_id)
    RunReport.objects.filter(pk=report.pk).update(dirty=True)
    if not _claim(RunReport, report.pk, dirty=False):
        return "another worker is reporting this run; it will report the newest state"
    holding = True
    try:
        for _ in range(MAX_ROUNDS):
            done = _publish(run_id, report.pk)
            if RunReport.objects.filter(pk=report.pk, dirty=False).update(busy_until=None):
                holding = False
                return done
            # The run moved while we were publishing: publish again, still holding it.
            RunReport.objects.filter(pk=report.pk).update(
                dirty=False, busy_until=timezone.now() + CLAIM_FOR
            )
        return done
    finally:
        if holding:  # failed or gave up: let the retry (or the reconciler) take over
            RunReport.objects.filter(pk=report.pk).update(busy_until=None)


def _publish(run_id: int, report_pk: int) -> str:
    run = Run.objects.select_related("repository").get(pk=run_id)
    RunReport.objects.filter(pk=report_pk).update(attempts=F("attempts") + 1)
    report = RunReport.objects.get(pk=report_pk)
    creds = auth.credentials_for(run.repository)
    if creds is None:
        return "GitHub is not configured"
    built = summary.build(run)
    if creds.mode == "app":
        _publish_check_run(run, report, built, creds.token)
    else:
        _publish_commit_status(run, report, built, creds.token)
    final = summary.is_final(run.state)
    if final and run.pr_number:
        _publish_comment(run, run.pr_number, built, creds.token)
    fields: dict[str, object] = {"report_status": "reported", "report_error": ""}
    if final and run.reported_at is None:
        fields["reported_at"] = timezone.now()
    _set_run(run.pk, **fields)
    RunReport.objects.filter(pk=report_pk).update(last_error="")
    return f"reported {run.state}"


def _publish_check_run(run: Run, report: RunReport, built: summary.Report, token: str) -> None:
    full = run.repository.github_full_name
    check_id = report.check_run_id
    if check_id is None and report.check_run_unconfirmed:
        check_id = _find_check_run(run, token)
    payload = summary.check_run_payload(run, built, create=check_id is None)
    fingerprint = summary.digest(payload)
    if check_id is not None and fingerprint == report.last_digest:
        return  # GitHub already shows exactly this
    if check_id is None:
        check_id = _create(
            f"/repos/{full}/check-runs", token, payload, RunReport, report.pk, "check_run"
        )
    else:
        github.call("PATCH", f"/repos/{full}/check-runs/{check_id}", token=token, json=payload)
    RunReport.objects.filter(pk=report.pk).update(
        check_run_id=check_id,
        check_run_unconfirmed=False,
        last_state=run.state,
        last_digest=summary.digest(summary.check_run_payload(run, built, create=False)),
    )


def _create(path: str, token: str, payload: dict, model, pk: int, what: str) -> int:
    """POST a create and return the new id. Until the id is stored the row says a create
    was sent (`<what>_unconfirmed`), so a retry looks for it before creating another;
    an outright refusal (4xx) created nothing and clears that."""
    flag = f"{what}_unconfirmed"
    model.objects.filter(pk=pk).update(**{flag: True})
    try:
        answer = github.call("POST", path, token=token, json=payload)
    except github.GitHubTransient:
        raise
    except github.GitHubError:
        model.objects.filter(pk=pk).update(**{flag: False})
        raise
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
        raise github.GitHubError(f"GitHub's answer to creating a {what} has no id")
    return answer["id"]


def _find_check_run(run: Run, token: str) -> int | None:
    """The check run an earlier create made if its answer was lost (matched by our
    external id), so a retry never makes a second one."""
    full = run.repository.github_full_name
    found = github.call(
        "GET",
        f"/repos/{full}/commits/{run.commit_sha}/check-runs",
        token=token,
        params={"check_name": summary.CHECK_NAME, "filter": "all", "per_page": 100},
    )
    wanted = f"delta-ci-run-{run.pk}"
    for item in (found or {}).get("check_runs", []) if isinstance(found, dict) else []:
        if isinstance(item, dict) and item.get("external_id") == wanted:
            return item.get("id")
    return None


def _publish_commit_status(run: Run, report: RunReport, built: summary.Report, token: str) -> None:
    full = run.repository.github_full_name
    payload = summary.commit_status_payload(run, built)
    fingerprint = summary.digest(payload)
    if fingerprint == report.last_digest:
        return
    github.call("POST", f"/repos/{full}/statuses/{run.commit_sha}", token=token, json=payload)
    RunReport.objects.filter(pk=report.pk).update(last_state=run.state, last_digest=fingerprint)


def _publish_comment(run: Run, pr_number: int, built: summary.Report, token: str) -> None:
    row, _ = PullRequestComment.objects.get_or_create(
        repository_id=run.repository_id, pr_number=pr_number
    )
    if row.run_id is not None and row.run_id > run.pk:
        return  # the comment already shows a newer run of this pull request
    body = summary.comment_body(run, built)
    fingerprint = summary.digest(body)
    if row.comment_id and row.run_id == run.pk and row.last_digest == fingerprint:
        return
    if not _claim(PullRequestComment, row.pk):
        raise Busy("the pull request comment is being written by another worker", retry_after=5)
    try:
        row.refresh_from_db()
        if row.run_id is not None and row.run_id > run.pk:
            return
        full = run.repository.github_full_name
        comment_id = row.comment_id
        if comment_id is None and row.comment_unconfirmed:
            comment_id = _find_comment(run, row, token)
        if comment_id is None:
            comment_id = _create(
                f"/repos/{full}/issues/{pr_number}/comments",
                token,
                {"body": body},
                PullRequestComment,
                row.pk,
                "comment",
            )
        else:
            github.call(
                "PATCH",
                f"/repos/{full}/issues/comments/{comment_id}",
                token=token,
                json={"body": body},
            )
        PullRequestComment.objects.filter(pk=row.pk).update(
            comment_id=comment_id, comment_unconfirmed=False, run=run, last_digest=fingerprint
        )
    finally:
        PullRequestComment.objects.filter(pk=row.pk).update(busy_until=None)


def _find_comment(run: Run, row: PullRequestComment, token: str) -> int | None:
    """Our comment, if an earlier create went through but its answer was lost: the
    newest comment since then that carries our marker."""
    full = run.repository.github_full_name
    since = (row.updated_at - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = github.call(
        "GET",
        f"/repos/{full}/issues/{run.pr_number}/comments",
        token=token,
        params={"since": since, "per_page": 100},
    )
    marker = summary.comment_marker(run)
    ours = [
        c["id"]
        for c in (found if isinstance(found, list) else [])
        if isinstance(c, dict)
        and isinstance(c.get("id"), int)
        and str(c.get("body", "")).startswith(marker)
    ]
    return ours[-1] if ours else None


def note_failure(run_id: int, exc: Exception, *, final: bool) -> None:
    """Make a reporting problem visible on the run (never touching its state)."""
    message = str(exc)[:2000]
    _set_run(run_id, report_status="failed" if final else "retrying", report_error=message)
    RunReport.objects.filter(run_id=run_id).update(last_error=message)
    log.warning(
        "reporting run %s to GitHub %s: %s",
        run_id,
        "failed" if final else "will be retried",
        message,
        extra={"run_id": run_id},
    )
