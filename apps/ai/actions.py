"""Advisory failure analysis of a job's final failed attempt. The provider is called
outside any transaction; the stored result and its audit event commit together. Nothing
here changes a run, a job, an attempt, a retry or a check result."""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.ai import gate, metrics
from apps.ai.facts import failure_facts, run_secret_values
from apps.ai.models import WITH_SUGGESTION, FailureAnalysis, Outcome
from apps.ai.prompt import build_request
from apps.ai.provider import Reply, ask
from apps.audit.actions import record
from apps.policies.effective import policy_for
from apps.runs.choices import AttemptState, JobState
from apps.runs.models import JobAttempt

log = logging.getLogger(__name__)
_FAILED = (AttemptState.FAILED, AttemptState.TIMED_OUT)
_JOB_FAILED = (JobState.FAILED, JobState.TIMED_OUT)


def wanted(attempt: JobAttempt) -> bool:
    """A job's final failed attempt, classified, of a repository whose policy asked for
    it, and never a fork run's unless the policy allows that too."""
    if attempt.state not in _FAILED or attempt.job.state not in _JOB_FAILED:
        return False
    if attempt.job.attempts.filter(attempt_number__gt=attempt.attempt_number).exists():
        return False
    policy = policy_for(attempt.run.repository)
    if not policy.ai_enabled:
        return False
    return not attempt.run.is_fork or policy.ai_allow_forks


def do_analyse_attempt(attempt_id: int, *, actor: str = "system") -> FailureAnalysis | None:
    config = gate.provider_config()
    if config is None:
        return None
    attempt = (
        JobAttempt.objects.select_related("job", "run__repository").filter(pk=attempt_id).first()
    )
    if attempt is None or not wanted(attempt):
        return None
    existing = FailureAnalysis.objects.filter(attempt=attempt).first()
    if existing is not None:
        return existing  # a redelivered task: one analysis per attempt
    now = timezone.now()
    repo = attempt.run.repository
    if gate.https_required(repo.environment) and not config.url.startswith("https://"):
        return _store(attempt, Reply(Outcome.REFUSED, detail="prod needs https"), actor=actor)
    if gate.breaker_open(now):
        return _store(attempt, Reply(Outcome.CIRCUIT_OPEN), actor=actor)
    if gate.daily_limit_reached(now):
        return _store(attempt, Reply(Outcome.DAILY_LIMIT), actor=actor)
    request = build_request(
        failure_facts(attempt),
        model=config.model,
        max_bytes=settings.DELTACI_AI_MAX_INPUT_BYTES,
        secrets=run_secret_values(attempt),
        internal_suffixes=settings.DELTACI_AI_INTERNAL_DOMAINS,
    )
    earlier = (
        FailureAnalysis.objects.filter(input_hash=request.input_hash, outcome__in=WITH_SUGGESTION)
        .order_by("-created_at")
        .first()
    )
    if earlier is not None:
        return _store(
            attempt,
            Reply(Outcome.CACHED),
            actor=actor,
            copy_of=earlier,
            input_hash=earlier.input_hash,
        )
    reply = ask(config, request)  # outside any transaction: it may take the whole timeout
    if reply.outcome != Outcome.OK:
        log.warning("AI analysis of attempt %s: %s (%s)", attempt.pk, reply.outcome, reply.detail)
    return _store(
        attempt,
        reply,
        actor=actor,
        input_hash=request.input_hash,
        bytes_sent=request.size,
        model=config.model,
    )


@transaction.atomic
def _store(
    attempt: JobAttempt,
    reply: Reply,
    *,
    actor: str,
    input_hash: str = "",
    bytes_sent: int = 0,
    model: str = "",
    copy_of: FailureAnalysis | None = None,
) -> FailureAnalysis:
    fields: dict = {"outcome": reply.outcome, "input_hash": input_hash, "bytes_sent": bytes_sent}
    if copy_of is not None:
        fields.update(
            model_name=copy_of.model_name,
            summary=copy_of.summary,
            likely_cause=copy_of.likely_cause,
            next_steps=copy_of.next_steps,
            confidence=copy_of.confidence,
        )
    elif reply.suggestion is not None:
        s = reply.suggestion
        fields.update(
            model_name=model,
            summary=s.summary,
            likely_cause=s.likely_cause,
            next_steps=s.next_steps,
            confidence=s.confidence,
        )
    else:
        fields["model_name"] = model
    try:
        with transaction.atomic():
            analysis = FailureAnalysis.objects.create(attempt=attempt, **fields)
    except IntegrityError:  # another worker stored one first
        return FailureAnalysis.objects.get(attempt=attempt)
    if bytes_sent:  # a request left the building: audit it (never its content)
        record(
            "ai.request",
            actor=actor,
            run=attempt.run,
            target=f"attempt {attempt.pk}",
            model=model,
            bytes_sent=bytes_sent,
            outcome=reply.outcome,
        )
        metrics.BYTES_SENT.inc(bytes_sent)
    metrics.REQUESTS.labels(reply.outcome).inc()
    return analysis
