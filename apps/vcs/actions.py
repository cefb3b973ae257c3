"""What a verified GitHub delivery does: create a run (idempotent on the trigger key),
cancel a closed pull request's runs, or nothing — and record the delivery."""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from apps.policies.effective import policy_for
from apps.runs.actions import RunError, do_create_run, do_rerun_run
from apps.runs.cancelling import do_cancel_run
from apps.runs.choices import RUN_ACTIVE, RunState
from apps.runs.models import Repository, Run
from apps.vcs import webhooks
from apps.vcs.models import DeliveryOutcome, WebhookDelivery

log = logging.getLogger(__name__)
ACTOR = "github"


@dataclass(frozen=True)
class Handled:
    outcome: str
    status: int
    detail: str
    run: Run | None = None
    canceled: tuple[int, ...] = ()

    def body(self) -> dict:
        out: dict = {"outcome": self.outcome, "detail": self.detail}
        if self.run is not None:
            out["run_id"] = str(self.run.pk)
        if self.canceled:
            out["canceled_run_ids"] = [str(pk) for pk in self.canceled]
        return out


def do_handle_delivery(event: str, delivery_id: str, payload: dict) -> Handled:
    """The delivery's effect. Raises webhooks.BadPayload for a malformed payload (the
    delivery is recorded as rejected first)."""
    raw_action = payload.get("action")
    action = raw_action if isinstance(raw_action, str) else ""
    repo_obj = payload.get("repository")
    name = repo_obj.get("full_name", "") if isinstance(repo_obj, dict) else ""
    if event == "ping":
        result = Handled(DeliveryOutcome.PONG, 200, "pong")
    else:
        try:
            result = _handle(webhooks.interpret(event, payload), delivery_id)
        except webhooks.BadPayload as exc:
            _record(
                delivery_id, event, action, name, Handled(DeliveryOutcome.REJECTED, 400, str(exc))
            )
            raise
    _record(delivery_id, event, action, name, result)
    return result


def _record(delivery_id: str, event: str, action: str, name: object, result: Handled) -> None:
    if not delivery_id:
        return
    fields = {
        "event": event[:50],
        "action": action[:50],
        "full_name": str(name)[:200],
        "outcome": result.outcome,
        "detail": result.detail[:500],
        "run": result.run,
    }
    updated = WebhookDelivery.objects.filter(delivery_id=delivery_id).update(
        times_received=F("times_received") + 1, **fields
    )
    if not updated:
        WebhookDelivery.objects.get_or_create(delivery_id=delivery_id, defaults=fields)


def _repository(full_name: str) -> Repository | None:
    return Repository.objects.filter(github_full_name__iexact=full_name).order_by("pk").first()


def _handle(what, delivery_id: str) -> Handled:
    if isinstance(what, webhooks.Ignore):
        return Handled(DeliveryOutcome.IGNORED, 202, what.why)
    repo = _repository(what.full_name)
    if repo is None:
        log.info("webhook for unknown repository %s ignored", what.full_name)
        return Handled(
            DeliveryOutcome.IGNORED, 202, f"no repository is connected to {what.full_name}"
        )
    if isinstance(what, webhooks.ClosePullRequest):
        return _close(repo, what.pr_number)
    if isinstance(what, webhooks.Rerun):
        return _rerun(repo, what, delivery_id)
    if what.is_tag and not policy_for(repo).build_tags:
        return Handled(
            DeliveryOutcome.IGNORED, 202, "tag pushes do not create runs (policy build_tags)"
        )
    return _build(repo, what)


def _build(repo: Repository, what: webhooks.Build) -> Handled:
    key = what.event_key
    if what.reopened:
        # A reopened PR whose last run of this commit was cancelled (by closing it) is
        # built again; the key names that run, so replays of the event create no more.
        # Otherwise the reopen is a duplicate of that last run.
        last = (
            Run.objects.filter(
                repository=repo, pr_number=what.pr_number, commit_sha=what.commit_sha
            )
            .order_by("-created_at", "-pk")
            .first()
        )
        if last is not None:
            canceled = last.state == RunState.CANCELED
            key = f"{what.event_key}:after:{last.pk}" if canceled else last.event_key
    run, created = do_create_run(
        repo,
        trigger=what.trigger,
        ref=what.ref,
        commit_sha=what.commit_sha,
        base_sha=what.base_sha,
        pr_number=what.pr_number,
        is_fork=what.is_fork,
        event_key=key,
        actor=ACTOR,
    )
    if created:
        return Handled(DeliveryOutcome.CREATED, 201, f"run {run.pk} created", run)
    return Handled(DeliveryOutcome.DUPLICATE, 200, f"run {run.pk} already exists", run)


def _rerun(repo: Repository, what: webhooks.Rerun, delivery_id: str) -> Handled:
    """A failed run re-requested from its check run reruns what failed; a check suite,
    or a run that did not fail, reruns everything. A redelivery (same delivery id)
    finds the rerun it made."""
    key = f"github:{delivery_id}" if delivery_id else ""
    if key:  # do_rerun_run ends the rerun's event key with it
        made = Run.objects.filter(repository=repo, event_key__endswith=f":{key}").first()
        if made is not None:
            return Handled(DeliveryOutcome.DUPLICATE, 200, f"run {made.pk} already exists", made)
    runs = Run.objects.filter(repository=repo, commit_sha=what.head_sha)
    if what.run_id is not None:
        runs = runs.filter(pk=what.run_id)
    run = runs.order_by("-created_at", "-pk").first()
    if run is None:
        return Handled(DeliveryOutcome.IGNORED, 202, f"no run of {what.head_sha[:12]} to rerun")
    failed_only = what.run_id is not None and run.state == RunState.FAILED
    try:
        new, created = do_rerun_run(
            run,
            failed_only=failed_only,
            actor=f"{ACTOR}:rerequested",
            idempotency_key=key,
        )
    except RunError as exc:
        return Handled(DeliveryOutcome.IGNORED, 202, str(exc))
    if created:
        scope = "the failed jobs" if failed_only else "all jobs"
        detail = f"run {new.pk} reruns {scope} of run {run.pk}"
        return Handled(DeliveryOutcome.CREATED, 201, detail, new)
    return Handled(DeliveryOutcome.DUPLICATE, 200, f"run {new.pk} already exists", new)


def _close(repo: Repository, number: int) -> Handled:
    canceled = []
    active = Run.objects.filter(repository=repo, pr_number=number, state__in=RUN_ACTIVE)
    for run in active.order_by("pk"):
        with transaction.atomic():
            if do_cancel_run(run, actor=f"{ACTOR}:pull_request.closed"):
                canceled.append(run.pk)
    detail = f"pull request #{number} closed: {len(canceled)} run(s) cancelled"
    return Handled(DeliveryOutcome.CANCELED, 200, detail, canceled=tuple(canceled))
