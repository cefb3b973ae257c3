"""Failed authentication (logins, API tokens): every failure is audited, and counted per
client address and per account name in Django's cache (Redis when REDIS_URL is set, so
all processes share the counts). Past DELTACI_AUTH_MAX_FAILURES_PER_USER failures for a
name, or DELTACI_AUTH_MAX_FAILURES_PER_IP from an address, further attempts are refused
unchecked until DELTACI_AUTH_FAILURE_WINDOW_SECONDS after the first failure. A cache
that does not answer never blocks a login: the failure is still audited.

The address is REMOTE_ADDR, the peer of this process: behind a reverse proxy every
client shares the proxy's address, which is why the per-address limit is the higher."""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache

from apps.audit.actions import record

log = logging.getLogger(__name__)


def _keys(request, name: str | None) -> list[tuple[str, int]]:
    keys = [(f"authfail:ip:{client_address(request)}", settings.DELTACI_AUTH_MAX_FAILURES_PER_IP)]
    if name:
        digest = hashlib.sha256(name.strip().lower().encode("utf-8", "replace")).hexdigest()
        keys.append((f"authfail:user:{digest[:32]}", settings.DELTACI_AUTH_MAX_FAILURES_PER_USER))
    return keys


def client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown")[:64]


def blocked(request, name: str | None = None, *, kind: str) -> bool:
    """True when this address or name has failed too often; the first refused attempt
    of a window is audited (not every one: a flood must not flood the audit log)."""
    try:
        over = [k for k, limit in _keys(request, name) if (cache.get(k) or 0) >= limit]
        if over and cache.add(f"{over[0]}:noted", 1, settings.DELTACI_AUTH_FAILURE_WINDOW_SECONDS):
            record(
                "auth.throttled",
                actor=kind,
                target=(name or "")[:200],
                ip=client_address(request),
                scope="user" if ":user:" in over[0] else "ip",
            )
        return bool(over)
    except Exception:  # noqa: BLE001 - a cache outage must not lock everyone out
        log.warning("authentication throttle unavailable", exc_info=True)
        return False


def failed(request, name: str | None = None, *, kind: str, why: str, target: str = "") -> None:
    """Audit one failure and count it against the address and the name."""
    record(
        "auth.failed",
        actor=kind,
        target=(target or name or "")[:200],
        ip=client_address(request),
        why=why,
    )
    window = settings.DELTACI_AUTH_FAILURE_WINDOW_SECONDS
    try:
        for key, _ in _keys(request, name):
            cache.add(key, 0, window)
            cache.incr(key)
    except Exception:  # noqa: BLE001 - see blocked()
        log.warning("authentication throttle unavailable", exc_info=True)


def succeeded(request, name: str) -> None:
    """A correct password clears the name's count (not the address's)."""
    try:
        cache.delete_many([k for k, _ in _keys(request, name)[1:]])
    except Exception:  # noqa: BLE001 - see blocked()
        log.warning("authentication throttle unavailable", exc_info=True)
