"""Operator and runner actions on runners and registration tokens."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.audit.actions import record
from apps.runners import leasing
from apps.runners.models import Lease, Runner, RunnerRegistrationToken
from apps.runs.choices import LEASE_LIVE
from lib.tokens import hash_token, new_token, short_hash


class RegistrationRefused(Exception):
    pass


@transaction.atomic
def do_create_registration_token(
    *,
    environment: str = "dev",
    name: str = "",
    labels: list[str] | None = None,
    expires_at: datetime | None = None,
    actor: str = "system",
) -> tuple[RunnerRegistrationToken, str]:
    """Returns the row and the token itself, which is shown once and stored hashed."""
    token = new_token()
    row = RunnerRegistrationToken.objects.create(
        name=name,
        environment=environment,
        token_hash=hash_token(token),
        token_prefix=short_hash(token),
        labels=labels or [],
        expires_at=expires_at,
        created_by=actor,
    )
    record(
        "registration_token.create",
        actor=actor,
        target=row.token_prefix,
        environment=environment,
        name=name,
    )
    return row, token


def check_registration_token(registration_token: str | None) -> RunnerRegistrationToken:
    """The usable registration token row; a missing, unknown, revoked or expired token is
    refused (and a presented bad one audited by its hash prefix)."""
    if not registration_token:
        raise RegistrationRefused("missing registration token")
    row = RunnerRegistrationToken.objects.filter(token_hash=hash_token(registration_token)).first()
    now = timezone.now()
    if row is None or row.revoked_at or (row.expires_at and row.expires_at <= now):
        record(
            "auth.failed",
            actor="runner-registration",
            target=short_hash(registration_token),
            why="bad registration token",
        )
        raise RegistrationRefused("invalid, revoked or expired registration token")
    return row


@transaction.atomic
def do_register_runner(
    registration_token: str | None, *, name: str, capabilities: list[str], version: str
) -> tuple[Runner, str]:
    row = check_registration_token(registration_token)
    now = timezone.now()
    token = new_token()
    caps = sorted(set(capabilities) | set(row.labels))
    runner = Runner.objects.create(
        name=name,
        environment=row.environment,
        capabilities=caps,
        version=version,
        token_hash=hash_token(token),
        token_prefix=short_hash(token),
        registration_token=row,
        last_seen_at=now,
    )
    record(
        "runner.register",
        actor=f"runner:{name}",
        target=runner.token_prefix,
        environment=row.environment,
        capabilities=caps,
    )
    return runner, token


@transaction.atomic
def do_set_runner_state(
    runner: Runner, *, enabled: bool | None = None, draining: bool | None = None, actor: str
) -> None:
    fields = {}
    if enabled is not None:
        fields["enabled"] = enabled
    if draining is not None:
        fields["draining"] = draining
    Runner.objects.filter(pk=runner.pk).update(**fields)
    record("runner.update", actor=actor, target=runner.name, **fields)


@transaction.atomic
def do_revoke_runner(runner: Runner, *, actor: str) -> None:
    """A revoked runner's token stops working at once, and the leases it holds are revoked
    (their attempts are retried elsewhere within the infra budget)."""
    Runner.objects.filter(pk=runner.pk).update(revoked_at=timezone.now(), enabled=False)
    record("runner.revoke", actor=actor, target=runner.name)
    for lease in Lease.objects.filter(runner=runner, state__in=LEASE_LIVE):
        leasing.revoke(lease, actor=actor, why="runner revoked")


def do_revoke_lease(lease: Lease, *, actor: str) -> bool:
    """Operator revocation of one lease (admin)."""
    return leasing.revoke(lease, actor=actor)
