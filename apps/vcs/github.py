"""The one outbound HTTP seam to GitHub's REST API (github.com or GitHub Enterprise
Server at settings.GITHUB_API_URL). Answers are sorted into transient errors (worth a
retry: 5xx, 429, secondary rate limits, connection failures) and permanent ones."""

import logging
import time
from typing import Any

import requests
from django.conf import settings

log = logging.getLogger(__name__)
TIMEOUT = (5, 20)  # connect, read
API_VERSION = "2022-11-28"


class GitHubError(Exception):
    """GitHub refused the request; retrying the same request will not help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GitHubTransient(GitHubError):
    """Server error, rate limit or network failure: retry, after `retry_after` seconds
    when GitHub said how long to wait."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    reset = resp.headers.get("X-RateLimit-Reset")
    if resp.headers.get("X-RateLimit-Remaining") == "0" and reset and reset.isdigit():
        return max(0.0, int(reset) - time.time())
    return None


def _is_rate_limited(resp: requests.Response) -> bool:
    """429 always; 403 only when GitHub says it is a (secondary) rate limit."""
    if resp.status_code == 429:
        return True
    if resp.status_code != 403:
        return False
    if "Retry-After" in resp.headers or resp.headers.get("X-RateLimit-Remaining") == "0":
        return True
    return "rate limit" in resp.text[:2000].lower()


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
        text = body.get("message", "") if isinstance(body, dict) else ""
    except ValueError:
        text = resp.text[:200]
    return f"GitHub answered {resp.status_code}: {text}"[:500]


def call(
    method: str, path: str, *, token: str, json: dict | None = None, params: dict | None = None
) -> Any:
    """`method path` against the API with a bearer token (installation token, personal
    token or an app JWT). Returns the decoded JSON (None for an empty body)."""
    url = settings.GITHUB_API_URL.rstrip("/") + path
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": "delta-ci",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        resp = requests.request(
            method, url, headers=headers, json=json, params=params, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        raise GitHubTransient(f"GitHub unreachable: {type(exc).__name__}") from None
    if resp.status_code >= 500 or _is_rate_limited(resp):
        log.warning("GitHub %s %s answered %s", method, path, resp.status_code)
        raise GitHubTransient(
            _message(resp), status=resp.status_code, retry_after=_retry_after(resp)
        )
    if resp.status_code >= 400:
        raise GitHubError(_message(resp), status=resp.status_code)
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        raise GitHubError(f"GitHub answered {resp.status_code} with a non-JSON body") from None
