"""The login backend: Django's ModelBackend behind the failure audit and throttle of
apps/audit/authfail.py (the team login page and admin's both come through here)."""

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from apps.audit import authfail


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # not a web login (tests' client.login, shell)
            return super().authenticate(request, username, password, **kwargs)
        if authfail.blocked(request, username, kind="login"):
            raise PermissionDenied  # no other backend tries; the form says "incorrect"
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            authfail.failed(request, username, kind="login", why="wrong username or password")
        else:
            authfail.succeeded(request, username)
        return user
