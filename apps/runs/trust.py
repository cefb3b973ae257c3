"""Whether a run's commit may see the repository's secrets and write its caches.

A signed webhook names both the commit and whether it comes from a fork. A manual, API
or rerun request names a commit and a ref, and nothing proves the two belong together:
the head of a fork's pull request is fetchable from the same repository
(`refs/pull/N/head`). So such a run is trusted only when its ref is a branch or tag and
its commit is reachable from that ref's tip in the mirror; otherwise it runs exactly
like a fork run (no secrets, read-only caches) and its page says why. The check runs in
the planning task, after the mirror fetch, before any job exists — never inside a web
request. A failed-only rerun keeps the trust of the run it reruns (whose planning made
this check)."""

from django.db import transaction

from apps.audit.actions import record
from apps.runs.choices import Trigger
from apps.runs.models import Run
from lib import gitmirror

TRUSTED_REF_PREFIXES = ("refs/heads/", "refs/tags/")
_WEBHOOK = (Trigger.PUSH, Trigger.PULL_REQUEST)


def _origin(run: Run) -> Run:
    """The run a chain of reruns started from (as far as it still exists)."""
    seen = 0
    while run.trigger == Trigger.RERUN and run.rerun_of_id and seen < 100:
        parent = Run.objects.filter(pk=run.rerun_of_id).first()
        if parent is None:
            break
        run, seen = parent, seen + 1
    return run


def untrusted_reason(run: Run, mirror) -> str:
    """Why `run` must be treated like fork code, or '' when it may be trusted."""
    if run.is_fork or run.trigger in _WEBHOOK:
        return ""  # already untrusted, or the webhook decided
    if run.trigger == Trigger.RERUN:
        origin = _origin(run)
        if origin.trigger in _WEBHOOK and origin.commit_sha == run.commit_sha:
            return ""  # a rerun of what a webhook delivered: its trust
    if not run.ref.startswith(TRUSTED_REF_PREFIXES):
        return f"{run.ref} is not a branch or tag, so nothing shows the commit is not a fork's"
    if not gitmirror.is_ancestor(mirror, run.commit_sha, run.ref):
        return f"commit {run.commit_sha[:12]} is not reachable from {run.ref}"
    return ""


def mark_if_untrusted(run: Run, mirror) -> str:
    """Check `run` and, when untrusted, mark it like a fork run (audited). Returns the
    reason ('' when trusted)."""
    reason = untrusted_reason(run, mirror)
    if reason:
        with transaction.atomic():
            Run.objects.filter(pk=run.pk).update(is_fork=True, untrusted_reason=reason)
            run.is_fork, run.untrusted_reason = True, reason
            record("run.untrusted", run=run, target=run.ref, why=reason, sha=run.commit_sha)
    return reason
