"""`Authorization: Token <token>` for the run API, checked against ApiToken hashes (DRF's
clear-text TokenAuthentication is gone)."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from apps.apitokens.actions import TokenRefused, user_for_token

KEYWORD = "Token"


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != KEYWORD.lower():
            return None  # another scheme (or none): let the next authenticator try
        try:
            return user_for_token(token.strip())
        except TokenRefused:
            raise AuthenticationFailed("invalid API token") from None

    def authenticate_header(self, request) -> str:
        return KEYWORD
