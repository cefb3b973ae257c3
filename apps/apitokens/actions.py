"""Creating, using and revoking users' API tokens. Each change is audited by the token's
hash prefix, never the token."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from apps.apitokens.models import ApiToken
from apps.audit.actions import record
from lib.tokens import hash_token, new_token, same_hash, short_hash

TOKEN_PREFIX = "dci_"  # noqa: S105 - not a secret: makes tokens recognisable to scanners
LAST_USED_EVERY = timedelta(minutes=1)  # at most one write per token and minute


class TokenRefused(Exception):
    """The offered token authenticates nobody (the reason is for the audit log)."""


def do_create_api_token(
    user: AbstractBaseUser,
    *,
    name: str = "",
    expires_at: datetime | None = None,
    actor: str = "system",
) -> tuple[ApiToken, str]:
    """The row and the token itself, which is shown once and stored only hashed."""
    token = TOKEN_PREFIX + new_token()
    if expires_at is None:
        expires_at = timezone.now() + timedelta(days=settings.DELTACI_API_TOKEN_DAYS)
    row = ApiToken.objects.create(
        user=user,  # type: ignore[misc]  # the project's user model
        name=name[:100],
        token_hash=hash_token(token),
        token_prefix=short_hash(token),
        expires_at=expires_at,
        created_by=actor,
    )
    record(
        "api_token.create",
        actor=actor,
        target=row.token_prefix,
        user=user.get_username(),
        expires_at=expires_at.isoformat(),
    )
    return row, token


def do_revoke_api_token(token: ApiToken, *, actor: str) -> bool:
    """The token stops working now; False when it was already revoked."""
    done = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if done:
        record("api_token.revoke", actor=actor, target=token.token_prefix)
    return bool(done)


def user_for_token(token: str) -> tuple[AbstractBaseUser, ApiToken]:
    """The active user an offered token belongs to (raises TokenRefused), noting its
    use."""
    if not token or len(token) > 200 or not token.isprintable():
        raise TokenRefused("malformed token")
    digest = hash_token(token)
    row = ApiToken.objects.select_related("user").filter(token_hash=digest).first()
    if row is None or not same_hash(row.token_hash, digest):
        raise TokenRefused("unknown token")
    now = timezone.now()
    state = row.status(now)
    if state != "active":
        raise TokenRefused(f"{state} token")
    if not row.user.is_active:
        raise TokenRefused("inactive user")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=row.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
    return row.user, row
