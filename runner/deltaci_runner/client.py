"""HTTP seam to the control plane: one method per endpoint, error bodies mapped to exceptions.

Callers decide what to retry: `TransientError` (network, 5xx, 429) is safe to
retry with the same body; `StaleLease` means stop the job; other 4xx are
`ProtocolError` and retrying them would not help.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

import requests

from deltaci_runner import PROTOCOL_VERSION, __version__

T = TypeVar("T")
USER_AGENT = f"deltaci-runner/{__version__}"
CONNECT_TIMEOUT = 5.0


class ClientError(Exception):
    """Base of every error this module raises."""


class TransientError(ClientError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StaleLease(ClientError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"stale lease: {reason}")
        self.reason = reason


class ProtocolError(ClientError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Unauthorized(ProtocolError):
    pass


class Forbidden(ProtocolError):
    pass


class UpgradeRequired(ProtocolError):
    """426: the control plane does not speak this runner's protocol version."""


class LogGap(ClientError):
    """416 on a log chunk: the server holds fewer bytes than we assumed."""

    def __init__(self, next_offset: int) -> None:
        super().__init__(f"log gap, resume at {next_offset}")
        self.next_offset = next_offset


def _json_or_empty(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return None


def raise_for_response(resp: requests.Response) -> None:
    """Map a non-2xx answer to the exception the protocol's error body describes."""
    status = resp.status_code
    if status < 300:
        return
    body = _json_or_empty(resp)
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    code = str(error.get("code", "")) or f"HTTP_{status}"
    message = str(error.get("message", ""))[:300]
    if status == 409 and (body.get("type") == "StaleLease" or code == "STALE_LEASE"):
        raise StaleLease(str(body.get("reason") or "UNKNOWN_LEASE"))
    if status == 429 or status >= 500:
        raise TransientError(f"{status} {code}", retry_after=_retry_after(resp))
    if status == 401:
        raise Unauthorized(status, code, message)
    if status == 403:
        raise Forbidden(status, code, message)
    if status == 426:
        raise UpgradeRequired(status, code, message)
    raise ProtocolError(status, code, message)


class ControlPlane:
    """Runner-side client. Thread-safe: each thread gets its own `requests.Session`."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # a proxy from the environment must not see runner tokens
            session.headers["User-Agent"] = USER_AGENT
            session.headers["X-Delta-Protocol"] = str(PROTOCOL_VERSION)
            self._local.session = session
        return session

    def _post(
        self,
        path: str,
        data: bytes,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        all_headers = {"Authorization": f"Bearer {token or self.token}"}
        all_headers.update(headers or {"Content-Type": "application/json"})
        try:
            resp = self._session.post(
                self.base_url + path,
                data=data,
                headers=all_headers,
                timeout=(CONNECT_TIMEOUT, timeout or self.timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise TransientError(f"{type(exc).__name__} on {path}") from None
        return resp

    def post_json(self, path: str, body: bytes | dict[str, Any], **kw: Any) -> dict[str, Any]:
        """POST a protocol message. Pass pre-encoded bytes to guarantee identical retries."""
        data = body if isinstance(body, bytes) else encode(body)
        resp = self._post(path, data, **kw)
        raise_for_response(resp)
        return _json_or_empty(resp)

    # -- endpoints -------------------------------------------------------------------------------

    def register(
        self, registration_token: str, name: str, capabilities: list[str]
    ) -> dict[str, Any]:
        body = {"name": name, "capabilities": capabilities, "version": __version__}
        return self.post_json("/api/v1/runners/register", body, token=registration_token)

    def lease(
        self, runner_id: str, capabilities: list[str], wait_seconds: int
    ) -> dict[str, Any] | None:
        """Long-poll for work; None on 204."""
        body = {
            "type": "LeaseRequest",
            "runner_id": runner_id,
            "capabilities": capabilities,
            "wait_seconds": wait_seconds,
        }
        resp = self._post("/api/v1/internal/lease", encode(body), timeout=wait_seconds + 15)
        if resp.status_code == 204:
            return None
        raise_for_response(resp)
        grant = _json_or_empty(resp)
        if grant.get("type") != "LeaseGranted" or not grant.get("lease_id"):
            raise TransientError("lease answer is not a LeaseGranted")
        return grant

    def send_log(self, lease_id: str, start: int, data: bytes) -> int:
        """Append bytes at `start`; returns the server's next_offset."""
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Delta-Lease": lease_id,
            "Content-Range": f"bytes {start}-{start + len(data) - 1}/*",
        }
        resp = self._post("/api/v1/internal/log", data, headers=headers, timeout=60)
        if resp.status_code == 416:
            body = _json_or_empty(resp)
            raise LogGap(int(body.get("next_offset", 0)))
        raise_for_response(resp)
        return int(_json_or_empty(resp).get("next_offset", start + len(data)))

    def put_upload(self, upload: dict[str, Any], fileobj: IO[bytes]) -> None:
        """PUT artifact bytes to the signed URL. No runner token: the URL is the capability."""
        method = str(upload.get("method") or "PUT").upper()
        headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
        try:
            resp = requests.request(
                method,
                str(upload["url"]),
                data=fileobj,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, 300),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise TransientError(f"{type(exc).__name__} on artifact upload") from None
        raise_for_response(resp)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def backoff_delays(base: float = 0.5, cap: float = 10.0) -> Callable[[], float]:
    """Exponential backoff with jitter; each call returns the next delay."""
    attempt = 0

    def next_delay() -> float:
        nonlocal attempt
        delay = min(cap, base * (2.0**attempt))
        attempt += 1
        return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto

    return next_delay


def retry_transient(
    call: Callable[[], T],
    *,
    deadline: float,
    stop: threading.Event | None = None,
    on_retry: Callable[[TransientError, float], None] | None = None,
) -> T:
    """Repeat `call` on TransientError until it succeeds or `deadline` (monotonic) passes."""
    delays = backoff_delays()
    while True:
        try:
            return call()
        except TransientError as exc:
            delay = exc.retry_after if exc.retry_after is not None else delays()
            if time.monotonic() + delay > deadline:
                raise
            if on_retry:
                on_retry(exc, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise
            else:
                time.sleep(delay)
