"""Credentials for talking to GitHub: a personal token (GITHUB_TOKEN), or a GitHub App
(GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY) whose RS256-signed JWT is exchanged for
installation tokens. Installation tokens are cached per process until shortly before
they expire. Runners only ever get a short-lived, read-only, one-repository token."""

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.vcs import github
from lib.gitmirror import GitError

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
JWT_LIFETIME = timedelta(minutes=9)  # GitHub accepts at most 10 minutes
RUNNER_PERMISSIONS = {"contents": "read"}

_lock = threading.Lock()
_tokens: dict[tuple, tuple[str, datetime]] = {}
_installations: dict[tuple, int] = {}


@dataclass(frozen=True)
class Credentials:
    token: str
    mode: str  # "app" (installation token) or "token" (personal token)


def mode() -> str:
    """Which credentials are configured: "app", "token", or "" for none."""
    if settings.GITHUB_APP_ID and settings.GITHUB_APP_PRIVATE_KEY:
        return "app"
    if settings.GITHUB_TOKEN:
        return "token"
    return ""


def clear_cache() -> None:
    with _lock:
        _tokens.clear()
        _installations.clear()


def app_jwt() -> str:
    """The app's own credential: a JWT signed with its private key (RS256), valid for a
    few minutes, good only for the /app endpoints."""
    now = timezone.now()
    payload = {
        "iat": int((now - timedelta(seconds=60)).timestamp()),  # GitHub's clock-drift advice
        "exp": int((now + JWT_LIFETIME).timestamp()),
        "iss": str(settings.GITHUB_APP_ID),
    }
    try:
        return jwt.encode(payload, settings.GITHUB_APP_PRIVATE_KEY, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError):
        # Never echo the key (or a fragment of it) into an error shown on a run.
        raise github.GitHubError("GITHUB_APP_PRIVATE_KEY is not a usable RSA private key") from None


def _cache_key(*parts: object) -> tuple:
    return (settings.GITHUB_API_URL, str(settings.GITHUB_APP_ID), *parts)


def installation_id(full_name: str) -> int:
    key = _cache_key(full_name)
    with _lock:
        if key in _installations:
            return _installations[key]
    found = github.call("GET", f"/repos/{full_name}/installation", token=app_jwt())
    if not isinstance(found, dict) or not isinstance(found.get("id"), int):
        raise github.GitHubError(f"no GitHub App installation found for {full_name}")
    with _lock:
        _installations[key] = found["id"]
    return found["id"]


def installation_token(full_name: str, *, runner: bool = False) -> str:
    """An installation token for the repository's installation. `runner=True` asks for
    one narrowed to this one repository and read-only contents."""
    key = _cache_key(full_name, "runner" if runner else "plane")
    now = timezone.now()
    with _lock:
        cached = _tokens.get(key)
        if cached and cached[1] - REFRESH_MARGIN > now:
            return cached[0]
    body = None
    if runner:
        body = {"repositories": [full_name.split("/", 1)[1]], "permissions": RUNNER_PERMISSIONS}
    iid = installation_id(full_name)
    try:
        answer = github.call(
            "POST", f"/app/installations/{iid}/access_tokens", token=app_jwt(), json=body
        )
    except github.GitHubError as exc:
        if exc.status == 404:  # the app was reinstalled: look the installation up again
            with _lock:
                _installations.pop(_cache_key(full_name), None)
        raise
    token = answer.get("token") if isinstance(answer, dict) else None
    expires = parse_datetime(str(answer.get("expires_at", ""))) if token else None
    if not token or expires is None:
        raise github.GitHubError("GitHub's installation token answer has no token or expiry")
    with _lock:
        _tokens[key] = (token, expires)
    return token


def credentials_for(repository) -> Credentials | None:
    """What the control plane reports with, or None when GitHub is not configured or the
    repository is not a GitHub repository."""
    full_name = getattr(repository, "github_full_name", "")
    if not full_name:
        return None
    m = mode()
    if m == "app":
        return Credentials(installation_token(full_name), "app")
    if m == "token":
        return Credentials(settings.GITHUB_TOKEN, "token")
    return None


def clone_token_for(repository) -> str:
    """A token that can read `repository` for the control plane's mirror fetches, or ""
    for local repositories and when GitHub is not configured."""
    try:
        creds = credentials_for(repository)
    except github.GitHubError as exc:
        name = repository.github_full_name
        raise GitError(f"could not get a GitHub token for {name}: {exc}") from None
    return creds.token if creds else ""


def runner_clone_token(repository) -> str:
    """A short-lived (one hour at most), read-only token for one repository that a
    runner may use to clone, or "". Only a GitHub App can mint one; a personal token is
    never handed to a runner, and public repositories need none."""
    full_name = getattr(repository, "github_full_name", "")
    if not full_name or mode() != "app" or repository.visibility == "public":
        return ""
    try:
        return installation_token(full_name, runner=True)
    except github.GitHubError as exc:
        # The lease is still granted: the runner's clone fails visibly (an infrastructure
        # failure, retried) rather than every lease request failing while GitHub is down.
        log.warning("no runner clone token for %s: %s", full_name, exc, extra={"repo": full_name})
        return ""
