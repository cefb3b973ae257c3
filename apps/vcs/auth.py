"""Credentials for talking to GitHub: a personal token (GITHUB_TOKEN), or a GitHub App
(GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY) whose RS256-signed JWT is exchanged for
installation tokens. Installation tokens are cached per process until shortly before
they expire. Runners only ever get a short-lived, read-only, one-repository token, minted
by the worker and stored encrypted (RunnerCloneToken) so a lease never calls GitHub."""

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.policies.secrets import decrypt, encrypt
from apps.vcs import github
from apps.vcs.models import RunnerCloneToken
from lib.gitmirror import GitError

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
# Runner tokens are renewed this long before they expire (GitHub gives one hour): the beat
# task runs every minute, so a lease always finds one with most of its hour left.
RUNNER_TOKEN_RENEW = timedelta(minutes=20)
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


def _exchange(full_name: str, body: dict | None) -> tuple[str, datetime]:
    """A new installation token (and its expiry) from GitHub, no cache involved."""
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
    return token, expires


def installation_token(full_name: str) -> str:
    """The control plane's installation token for the repository's installation, cached
    per process until shortly before it expires."""
    key = _cache_key(full_name, "plane")
    now = timezone.now()
    with _lock:
        cached = _tokens.get(key)
        if cached and cached[1] - REFRESH_MARGIN > now:
            return cached[0]
    token, expires = _exchange(full_name, None)
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


def needs_runner_token(repository) -> bool:
    """Only a GitHub App can mint a runner token; a personal token is never handed to a
    runner, and public (or local) repositories need none."""
    full_name = getattr(repository, "github_full_name", "")
    return bool(full_name) and mode() == "app" and repository.visibility != "public"


def runner_clone_token(repository) -> str:
    """The stored short-lived, read-only token for one repository that a runner may clone
    with, or "". Read at lease time: one row, no call to GitHub. A token missing or about
    to expire (GitHub was down when it was due) gives "": the lease is still granted and
    the runner's clone fails visibly, as infrastructure, and is retried."""
    if not needs_runner_token(repository):
        return ""
    row = RunnerCloneToken.objects.filter(
        repository=repository, expires_at__gt=timezone.now() + REFRESH_MARGIN
    ).first()
    if row is None:
        log.warning(
            "no fresh runner clone token for %s",
            repository.github_full_name,
            extra={"repo": repository.github_full_name},
        )
        return ""
    try:
        return decrypt(bytes(row.ciphertext))
    except ValueError:  # DELTACI_SECRETS_KEY changed: the next refresh cannot fix that either
        log.warning("runner clone token for %s cannot be decrypted", repository.github_full_name)
        return ""


def lasting_runner_tokens(now: datetime) -> QuerySet[RunnerCloneToken]:
    """The stored runner tokens that need no renewal yet."""
    return RunnerCloneToken.objects.filter(expires_at__gt=now + RUNNER_TOKEN_RENEW)


def refresh_runner_clone_token(repository) -> bool:
    """Mint and store the runner token when there is none that outlives RUNNER_TOKEN_RENEW
    (the worker's job: planning, and the beat task while jobs wait). True when one was
    minted; a GitHub failure is logged and left for the next try."""
    if not needs_runner_token(repository):
        return False
    now = timezone.now()
    if lasting_runner_tokens(now).filter(repository=repository).exists():
        return False
    full_name = repository.github_full_name
    body = {"repositories": [full_name.split("/", 1)[1]], "permissions": RUNNER_PERMISSIONS}
    try:
        token, expires = _exchange(full_name, body)
    except github.GitHubError as exc:
        log.warning("no runner clone token for %s: %s", full_name, exc, extra={"repo": full_name})
        return False
    RunnerCloneToken.objects.update_or_create(
        repository=repository,
        defaults={"ciphertext": encrypt(token), "expires_at": expires, "minted_at": now},
    )
    return True
