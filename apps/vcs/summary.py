"""What GitHub is told about a run, built from the database: the check run's status,
conclusion and markdown summary, a commit status (for personal-token setups), and the
pull request comment. Text from repositories and runner logs is untrusted: it is
escaped, fenced, stripped of @mentions and bounded."""

import hashlib
import json
import re
from dataclasses import dataclass

from django.conf import settings

from apps.runs.choices import JobState, RunState
from apps.runs.models import Job, JobAttempt, Run

CHECK_NAME = "Delta CI"
STATUS_CONTEXT = "delta-ci"
MAX_TEXT = 60000  # GitHub caps output.summary and comment bodies at 65535 characters
MAX_DETAIL = 1500
MAX_JOBS_LISTED = 200

# Keyed by str: run states are read from CharFields as plain strings (equal to the enum).
CONCLUSIONS: dict[str, str] = {
    RunState.SUCCESS: "success",
    RunState.FAILED: "failure",
    RunState.PLAN_FAILED: "failure",
    RunState.CANCELED: "cancelled",
    RunState.TIMEOUT: "timed_out",
}
IN_PROGRESS = (RunState.RUNNING, RunState.CANCEL_REQUESTED)
COMMIT_STATES = {
    "success": "success",
    "failure": "failure",
    "timed_out": "failure",
    "cancelled": "error",
}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def run_url(run: Run) -> str:
    return f"{settings.DELTACI_PUBLIC_URL}/runs/{run.pk}"


def comment_marker(run: Run) -> str:
    return f"<!-- delta-ci:pull-request-comment repo={run.repository_id} pr={run.pr_number} -->"


def digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def plain(text: str, limit: int = 300) -> str:
    """One line of untrusted text safe inside markdown (and a table cell): specials
    escaped, mentions defused, bounded."""
    text = " ".join(str(text).split())[:limit]
    return _MD_SPECIAL.sub(r"\\\1", text).replace("@", "@\u200b")


def fenced(text: str, limit: int = MAX_DETAIL) -> str:
    """A code block that untrusted text cannot break out of (nothing in it renders)."""
    text = str(text)[-limit:]
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def check_status(state: str) -> tuple[str, str | None]:
    """(status, conclusion) of the check run for a run state."""
    if state in CONCLUSIONS:
        return "completed", CONCLUSIONS[state]
    if state in IN_PROGRESS:
        return "in_progress", None
    return "queued", None


def is_final(state: str) -> bool:
    return state in CONCLUSIONS


@dataclass
class Report:
    status: str
    conclusion: str | None
    title: str
    summary: str
    text: str


def _latest_attempts(run: Run) -> dict[int, JobAttempt]:
    latest: dict[int, JobAttempt] = {}
    for a in JobAttempt.objects.filter(run=run).order_by("job_id", "attempt_number"):
        latest[a.job_id] = a
    return latest


def build(run: Run) -> Report:
    """The run as GitHub should show it now (two queries for any number of jobs)."""
    status, conclusion = check_status(run.state)
    jobs = list(Job.objects.filter(run=run).order_by("position", "id"))
    attempts = _latest_attempts(run)
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.state] = counts.get(j.state, 0) + 1
    tally = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "no jobs yet"
    word = conclusion or status.replace("_", " ")
    title = f"{word}: {tally}"[:200]
    lines = [
        f"**Run [{run.pk}]({run_url(run)})** of `{run.commit_sha[:12]}` "
        f"on {plain(run.ref, 200)}: **{run.state}**"
    ]
    if run.untrusted_reason:
        why = plain(run.untrusted_reason, 300)
        lines.append(f"Untrusted ({why}): no secrets were delivered, caches read-only.")
    elif run.is_fork:
        lines.append("Pull request from a fork: no secrets were delivered, caches read-only.")
    if run.reason:
        lines.append(f"Reason: {plain(run.reason, 500)}")
    if run.plan_error:
        lines += ["", "**Planning failed:**", fenced(run.plan_error)]
    if jobs:
        lines += ["", "| job | state | why |", "|---|---|---|"]
        for j in jobs[:MAX_JOBS_LISTED]:
            why = j.reason or j.reason_code
            lines.append(f"| {plain(j.name, 100)} | {j.state} | {plain(why, 200)} |")
        if len(jobs) > MAX_JOBS_LISTED:
            lines.append(f"| … | | {len(jobs) - MAX_JOBS_LISTED} more on the run page |")
    failures = []
    for j in jobs:
        a = attempts.get(j.pk)
        if j.state not in (JobState.FAILED, JobState.TIMED_OUT) or a is None:
            continue
        klass = a.failure_class or "unclassified"
        conf = f" ({a.failure_confidence:.0%})" if a.failure_confidence is not None else ""
        exit_code = f", exit code {a.exit_code}" if a.exit_code is not None else ""
        failures.append(f"**{plain(j.name, 100)}**: {klass}{conf}{exit_code}")
        detail = "\n".join(x for x in dict.fromkeys((a.failure_detail, a.summary)) if x)
        if detail:
            failures.append(fenced(detail))
    if failures:
        lines += ["", "### Failures", *failures]
    lines += ["", f"[Open the run]({run_url(run)})"]
    summary = "\n".join(lines)
    if len(summary) > MAX_TEXT:
        summary = summary[:MAX_TEXT] + f"\n\n… truncated; see {run_url(run)}"
    explain = (run.plan or {}).get("explain", "") if isinstance(run.plan, dict) else ""
    text = plain(explain, 4000) if explain else ""
    return Report(status, conclusion, title, summary, text)


def check_run_payload(run: Run, report: Report, *, create: bool) -> dict:
    output = {"title": report.title, "summary": report.summary}
    if report.text:
        output["text"] = report.text
    payload: dict = {
        "status": report.status,
        "details_url": run_url(run),
        "external_id": f"delta-ci-run-{run.pk}",
        "output": output,
    }
    if create:
        payload.update(name=CHECK_NAME, head_sha=run.commit_sha)
    if run.started_at:
        payload["started_at"] = run.started_at.isoformat()
    if report.conclusion:
        payload["conclusion"] = report.conclusion
        finished = run.finished_at or run.planned_at
        if finished:
            payload["completed_at"] = finished.isoformat()
    return payload


def commit_status_payload(run: Run, report: Report) -> dict:
    state = COMMIT_STATES.get(report.conclusion or "", "pending")
    return {
        "state": state,
        "target_url": run_url(run),
        "description": report.title[:140],
        "context": STATUS_CONTEXT,
    }


def comment_body(run: Run, report: Report) -> str:
    head = f"### Delta CI: {report.conclusion or report.status}"
    return f"{comment_marker(run)}\n{head}\n\n{report.summary}"
