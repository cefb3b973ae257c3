"""Wake-up signals for long-polling lease requests. Redis pub/sub when REDIS_URL is set;
otherwise waiters poll the database briefly. Signals are hints only: the database is the
dispatch queue, so a lost signal delays a lease by at most one poll interval."""

import logging
import threading
import time

from django.conf import settings

log = logging.getLogger(__name__)
WORK_CHANNEL = "deltaci:work"
CANCEL_CHANNEL = "deltaci:cancel"
POLL_SECONDS = 0.5
_local = threading.local()
_client_lock = threading.Lock()
_client = None


def _redis():
    global _client
    if not settings.REDIS_URL:
        return None
    with _client_lock:
        if _client is None:
            import redis

            _client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=2,
                socket_connect_timeout=1,
                health_check_interval=30,
            )
        return _client


def _publish(channel: str) -> None:
    client = _redis()
    if client is None:
        return
    try:
        client.publish(channel, b"1")
    except Exception as exc:  # noqa: BLE001 - a lost hint only delays dispatch by a poll
        log.warning("wake-up publish failed", extra={"channel": channel, "error": str(exc)})


def notify_work() -> None:
    _publish(WORK_CHANNEL)


def notify_cancel() -> None:
    _publish(CANCEL_CHANNEL)


def wait(deadline: float, channels: tuple[str, ...] = (WORK_CHANNEL,)) -> None:
    """Block until a signal on `channels` or the poll interval passes (never past
    `deadline`, a time.monotonic() value). Holds no database connection or lock."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return
    client = _redis()
    if client is None:
        time.sleep(min(POLL_SECONDS, remaining))
        return
    pubsub = getattr(_local, "pubsub", None)
    try:
        if pubsub is None:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(*channels)
            _local.pubsub = pubsub
        # Poll at least every second even with Redis: a signal published before we
        # subscribed, or lost with Redis, must not strand a waiting runner.
        msg = pubsub.get_message(timeout=min(1.0, remaining))
        if msg is None:
            return
    except Exception as exc:  # noqa: BLE001 - Redis down: fall back to polling
        log.warning("wake-up wait failed; polling", extra={"error": str(exc)})
        _local.pubsub = None
        time.sleep(min(POLL_SECONDS, remaining))
