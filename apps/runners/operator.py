"""Operator actions on registration tokens that the runner protocol itself never takes
(admin calls these; runner and lease actions live in apps/runners/actions.py)."""

from django.db import transaction
from django.utils import timezone

from apps.audit.actions import record
from apps.runners.models import RunnerRegistrationToken


@transaction.atomic
def do_revoke_registration_token(token: RunnerRegistrationToken, *, actor: str) -> bool:
    """No new runner can register with the token from now on (runners it already
    registered keep their own tokens). False when it was already revoked."""
    done = RunnerRegistrationToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if done:
        record(
            "registration_token.revoke",
            actor=actor,
            target=token.token_prefix,
            environment=token.environment,
            name=token.name,
        )
    return bool(done)
