"""Dispatch: a runner's lease request claims the oldest run's next queued attempt it may
take (its environment, its capabilities, the image policy, the repository's, the run's
and the global concurrency limits) and is granted a lease on it.

Claims lock one attempt with `FOR UPDATE SKIP LOCKED` on PostgreSQL (on SQLite, where
writers are serialised, the attempt's compare-and-set), so two requests never get the
same attempt, and the lease's one-to-one key means an attempt gets at most one lease
ever. Each round is one short transaction; nothing is held between rounds or while a
long-poll waits.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from apps.audit.actions import record
from apps.policies import images
from apps.policies.effective import EffectivePolicy, default_image_isolation, policy_for
from apps.runners import claimsql
from apps.runners.jobspec import granted_body
from apps.runners.leasing import Granted, count_live, lease_digest
from apps.runners.models import Lease, Runner
from apps.runs import engine, states
from apps.runs.choices import ATTEMPT_HELD, RUN_EXECUTING, AttemptState, JobState, RunState
from apps.runs.models import JobAttempt
from lib.db import begin_write, insert
from lib.tokens import new_token

CLAIM_SCAN = 20  # queued attempts examined per round
CLAIM_ROUNDS = 5  # rounds past attempts this runner cannot take, or that others are taking
# Below a limit by fewer than this many, concurrent claims take turns (see _take_turns):
# more than this many claims at once would be needed to overshoot the limit.
NEAR_LIMIT = 64
_AGAIN = object()


@dataclass
class _Passed:
    """What this claim already ruled out: attempts it cannot take, and repositories and
    runs at their concurrency limit; `host_only` once it met a job whose image it may not
    run (from then on such jobs are filtered in the query: the first round's query, the
    hot path, stays the plain one)."""

    attempts: set[int] = field(default_factory=set)
    repos: set[int] = field(default_factory=set)
    runs: set[int] = field(default_factory=set)
    host_only: bool = False

    def narrow(self, qs):
        if self.attempts:
            qs = qs.exclude(pk__in=self.attempts)
        if self.repos:
            qs = qs.exclude(run__repository_id__in=self.repos)
        if self.runs:
            qs = qs.exclude(run_id__in=self.runs)
        return qs


class RunnerGone(Exception):
    """The runner was revoked or deleted while its lease request waited: nothing granted."""


def claim(
    runner: Runner, capabilities: list[str] | None = None, *, recheck: bool = False
) -> Granted | None:
    """Lease the oldest run's next eligible queued attempt to `runner`, or None.

    A runner may narrow its registered capabilities in the request, never widen them.
    Each round is one short transaction; nothing is held between rounds. `recheck`: a
    long poll's later claims first read the runner again, which may have been revoked,
    deleted (RunnerGone) or set draining (None) since the request was authenticated."""
    if recheck:
        row = Runner.objects.filter(pk=runner.pk).values_list("revoked_at", "draining").first()
        if row is None or row[0] is not None:
            raise RunnerGone
        if row[1]:
            return None
    caps = frozenset(runner.capabilities)
    if capabilities is not None:
        caps &= frozenset(capabilities)
    passed = _Passed()
    claim_round = _claim_round_pg if connection.vendor == "postgresql" else _claim_round
    for _ in range(CLAIM_ROUNDS):
        outcome = claim_round(runner, caps, passed)
        if outcome is not _AGAIN:
            return outcome
    return None


def _queued(runner: Runner, passed: _Passed):
    qs = JobAttempt.objects.filter(
        state=AttemptState.QUEUED, run__repository__environment=runner.environment
    )
    if passed.host_only:  # as claimsql's host_only, in the ORM
        default = default_image_isolation(runner.environment)
        qs = qs.annotate(
            image_text=Coalesce(
                KeyTextTransform("image", "job__spec"), Value(""), output_field=TextField()
            ),
            isolation=Coalesce(
                NullIf("run__repository__policy__image_isolation", Value("")),
                Value(default),
                output_field=TextField(),
            ),
        ).exclude(Q(isolation="required") & ~Q(image_text=""))
    return passed.narrow(qs).order_by("run_created_at", "id")


def _claim_round_pg(runner: Runner, caps: frozenset, passed: _Passed):
    """PostgreSQL: capabilities are matched in SQL (jsonb containment), so one statement
    finds and locks (SKIP LOCKED) the oldest eligible attempt (apps/runners/claimsql.py);
    the rest is _take()."""
    with transaction.atomic():
        live = _live_leases()
        if live is None:
            return None
        attempt = claimsql.lock_next(
            runner.environment,
            sorted(caps),
            passed.attempts,
            passed.repos,
            passed.runs,
            host_only=passed.host_only,
        )
        if attempt is None:
            return None
        if not _matches(attempt.job.spec.get("runs_on"), caps):  # e.g. not a list
            passed.attempts.add(attempt.pk)
            return _AGAIN
        return _take(attempt, runner, caps, live, passed)


def _claim_round(runner: Runner, caps: frozenset, passed: _Passed):
    """Any database: scan a page of queued attempts without a transaction, match
    capabilities in Python, then lock and grant in one short transaction (an empty poll
    writes nothing, which matters to SQLite's single writer)."""
    queued = _queued(runner, passed)
    rows = list(queued.values_list("pk", "job__spec__runs_on")[:CLAIM_SCAN])
    if not rows:
        return None
    more = _AGAIN if len(rows) == CLAIM_SCAN else None
    eligible = [pk for pk, runs_on in rows if _matches(runs_on, caps)]
    passed.attempts.update(pk for pk, _ in rows if pk not in eligible)
    if not eligible:
        return more
    with transaction.atomic():
        begin_write()
        live = _live_leases()
        if live is None:
            return None
        qs = _with_grant_data(JobAttempt.objects.filter(pk__in=eligible, state=AttemptState.QUEUED))
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        attempt = qs.order_by("run_created_at", "id").first()
        if attempt is None:  # all taken, or being taken, by concurrent claims
            passed.attempts.update(eligible)
            return more
        return _take(attempt, runner, caps, live, passed)


def _with_grant_data(qs: QuerySet[JobAttempt]) -> "QuerySet[claimsql.ClaimedAttempt]":
    """What a grant needs, in the same query: the job, run, repository and policy, and
    the run's own max_concurrency (not the whole plan)."""
    annotated = (
        qs.select_related("job", "run", "run__repository", "run__repository__policy")
        .defer("run__plan", "run__recipe")
        .annotate(
            run_limit=KeyTextTransform("max_concurrency", KeyTransform("policies", F("run__plan")))
        )
    )
    # The stubs type a JSON key's text as str; a plan without the key reads NULL.
    return cast("QuerySet[claimsql.ClaimedAttempt]", annotated)


def _take(
    attempt: "claimsql.ClaimedAttempt", runner: Runner, caps: frozenset, live: int, passed: _Passed
):
    """Grant the locked `attempt` unless a policy or a limit says otherwise."""
    run, repo = attempt.run, attempt.run.repository
    policy = policy_for(repo)
    if run.state not in RUN_EXECUTING:
        passed.runs.add(run.pk)
        return _AGAIN
    image = str(attempt.job.spec.get("image") or "")
    refused = images.refusal(image, policy)
    if refused is not None:
        _refuse_image(attempt, policy, refused)
        return _AGAIN
    try:
        image_note = images.host_run_note(image, caps, policy)
    except images.NotHonoured:  # image_isolation=required and no container executor here
        passed.attempts.add(attempt.pk)
        passed.host_only = True
        return _AGAIN
    if _full(f"repo:{repo.pk}", policy.max_concurrent_jobs, live, run__repository=repo):
        passed.repos.add(repo.pk)
        return _AGAIN
    run_limit = _int(attempt.run_limit)
    if run_limit and _full(f"run:{run.pk}", run_limit, live, run=run):
        passed.runs.add(run.pk)
        return _AGAIN
    return _grant(attempt, runner, policy, image_note) or _AGAIN


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _matches(runs_on, caps: frozenset) -> bool:
    """A job's `runs_on` labels must all be among the runner's capabilities."""
    if not runs_on:
        return True
    if not isinstance(runs_on, list):
        return False
    return all(isinstance(label, str) and label in caps for label in runs_on)


def _take_turns(key: str) -> None:
    """Serialise the claims that are close to one limit (PostgreSQL advisory lock, held
    to the end of this transaction); SQLite serialises writers anyway."""
    if connection.vendor == "postgresql":
        lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock])


def _live_leases() -> int | None:
    """How many leases are live, or None when the global limit is reached."""
    limit = settings.DELTACI_MAX_CONCURRENT_LEASES
    live = count_live()
    if live + NEAR_LIMIT >= limit:
        _take_turns("leases")
        live = count_live()
    return live if live < limit else None


def _full(key: str, limit: int, live: int, **scope) -> bool:
    """Does `scope` (a repository or a run) already hold `limit` attempts? Held attempts
    all have live leases, so far below the limit no count is needed."""
    if live + NEAR_LIMIT < limit:
        return False
    _take_turns(key)
    return JobAttempt.objects.filter(state__in=ATTEMPT_HELD, **scope).count() >= limit


def _refuse_image(attempt: JobAttempt, policy: EffectivePolicy, refused: images.Refusal) -> None:
    """The job's image is invalid, not allowed (the policy may have changed after
    planning) or not pinned as the policy requires: end the attempt and the job with a
    clear reason, before any runner starts it, rather than leave them queued forever."""
    image = attempt.job.spec.get("image", "")
    message = refused.message
    why = refused.reason_code.lower().replace("_", " ")
    if not states.transition(
        states.ATTEMPT,
        attempt,
        AttemptState.CANCELED,
        why=why,
        summary=message,
        actor="system",
    ):
        return
    record(
        "policy.violation",
        run=attempt.run,
        target=attempt.job.name,
        image=str(image)[:200],
        allowed=policy.allowed_images,
        reason=refused.reason_code,
    )
    states.transition(
        states.JOB,
        attempt.job,
        JobState.CANCELED,
        why=why,
        reason_code=refused.reason_code,
        reason=message,
        actor="system",
    )
    engine.advance_run(attempt.run, actor="system", recheck=True)  # a job ended


def _grant(
    attempt: JobAttempt, runner: Runner, policy: EffectivePolicy, image_note: str | None = None
) -> Granted | None:
    actor = f"runner:{runner.name}"
    extra = {"image_note": image_note} if image_note else {}
    if not states.transition(
        states.ATTEMPT, attempt, AttemptState.LEASED, why="lease granted", actor=actor, **extra
    ):
        return None
    now = timezone.now()
    lease_id = new_token()
    digest = lease_digest(lease_id)
    lease = insert(  # one prepared INSERT: this is the hot path
        Lease(
            attempt=attempt,
            runner=runner,
            lease_hash=digest,
            lease_prefix=digest[:12],
            granted_at=now,
            ack_deadline=now + timedelta(seconds=settings.DELTACI_ACK_TIMEOUT_SECONDS),
            expires_at=now + timedelta(seconds=policy.lease_ttl_seconds),
        )
    )
    job, run = attempt.job, attempt.run
    if job.state == JobState.QUEUED:
        states.transition(
            states.JOB, job, JobState.RUNNING, why="first attempt leased", actor="system"
        )
    if run.state == RunState.QUEUED:
        states.transition(
            states.RUN, run, RunState.RUNNING, why="first attempt leased", actor="system"
        )
    record(
        "lease.grant",
        actor=actor,
        run=run,
        target=lease.lease_prefix,
        job=job.name,
        attempt=attempt.attempt_number,
    )
    return Granted(
        lease=lease,
        lease_id=lease_id,
        body=granted_body(attempt, lease_id, policy, runner, image_note),
    )
