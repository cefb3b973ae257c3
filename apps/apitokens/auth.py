"""`Authorization: Token <token>` for the run API, checked against ApiToken hashes (DRF's
clear-text TokenAuthentication is gone)."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from apps.apitokens.actions import TokenRefused, user_for_token
from apps.audit import authfail
from lib.tokens import short_hash

KEYWORD = "Token"


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != KEYWORD.lower():
            return None  # another scheme (or none): let the next authenticator try
        token = token.strip()
        if authfail.blocked(request, kind="api-token"):
            raise Throttled(detail="too many failed authentications from this address")
        try:
            return user_for_token(token)
        except TokenRefused as exc:
            authfail.failed(request, kind="api-token", why=str(exc), target=short_hash(token))
            raise AuthenticationFailed("invalid API token") from None

    def authenticate_header(self, request) -> str:
        return KEYWORD
