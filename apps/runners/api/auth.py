"""Runner authentication: `Authorization: Bearer <runner token>`, looked up by its hash."""

from django.db import connection
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from apps.audit.actions import record
from apps.runners import statements
from apps.runners.models import Runner
from lib.db import fetch_prepared, model_from_row
from lib.tokens import bearer_token, hash_token, same_hash, short_hash

LAST_SEEN_EVERY = 5  # seconds: keep the hot path to one write per message


class RunnerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            raise AuthenticationFailed("missing or malformed bearer token")
        digest = hash_token(token)
        # Every runner message starts here: a prepared query, no ORM query compiling.
        rows = fetch_prepared(statements.RUNNER_BY_HASH, {"hash": digest})
        runner = model_from_row(Runner, statements.RUNNER_FIELDS, rows[0]) if rows else None
        if runner is None or runner.revoked_at or not same_hash(runner.token_hash, digest):
            record("auth.failed", actor="runner", target=short_hash(token), path=request.path[:100])
            raise AuthenticationFailed("invalid runner token")
        now = timezone.now()
        if (
            not runner.last_seen_at
            or (now - runner.last_seen_at).total_seconds() >= LAST_SEEN_EVERY
        ):
            seen = connection.ops.adapt_datetimefield_value(now)
            fetch_prepared(statements.RUNNER_SEEN, {"now": seen, "id": runner.pk})
        return (runner, token)

    def authenticate_header(self, request) -> str:
        return "Bearer"
