"""Wake-up signals for long-polling lease requests: Redis pub/sub when REDIS_URL is set,
otherwise short in-process polling of the database.

Signals are hints only. The dispatch queue is the set of QUEUED attempts in the
database, and every wake-up just makes a waiter claim again, so a lost signal (or Redis
being down) delays a lease by at most one poll interval and can never lose or duplicate
a job.
"""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)
WORK_CHANNEL = "deltaci:work"
CANCEL_CHANNEL = "deltaci:cancel"
POLL_SECONDS = 0.5  # without Redis, or with Redis down: how often waiters claim again
REDIS_POLL_SECONDS = 2.0  # with Redis: claim again even without a signal (a lost hint)
RETRY_AFTER_SECONDS = 5.0  # after a Redis error, leave Redis alone this long
_lock = threading.Lock()
_clients: dict[str, Any] = {}
_down_until = 0.0


def _redis() -> Any:
    """The client for REDIS_URL, or None without Redis (or shortly after it failed)."""
    url = settings.REDIS_URL
    if not url or time.monotonic() < _down_until:
        return None
    with _lock:
        client = _clients.get(url)
        if client is None:
            import redis

            client = redis.Redis.from_url(
                url, socket_timeout=2, socket_connect_timeout=1, health_check_interval=30
            )
            _clients[url] = client
        return client


def _failed(what: str, exc: Exception) -> None:
    global _down_until
    _down_until = time.monotonic() + RETRY_AFTER_SECONDS
    log.warning("wake-up %s failed; polling instead", what, extra={"error": str(exc)[:200]})


def _publish(channel: str) -> None:
    from redis import RedisError

    client = _redis()
    if client is None:
        return
    try:
        client.publish(channel, b"1")
    except (RedisError, OSError) as exc:
        _failed("publish", exc)


def notify_work() -> None:
    """New attempts are queued (call on commit)."""
    _publish(WORK_CHANNEL)


def notify_cancel() -> None:
    """Attempts were asked to stop (call on commit)."""
    _publish(CANCEL_CHANNEL)


class Listener:
    """One long-poll's subscription. Subscribed (and confirmed) before the caller's next
    claim, so a signal sent after that claim's snapshot is not missed."""

    def __init__(self, channels: tuple[str, ...]) -> None:
        from redis import RedisError

        self._pubsub = None
        client = _redis()
        if client is None:
            return
        try:
            pubsub = client.pubsub()
            pubsub.subscribe(*channels)
            for _ in channels:  # wait for the confirmations
                pubsub.get_message(timeout=1.0)
            self._pubsub = pubsub
        except (RedisError, OSError) as exc:
            _failed("subscribe", exc)

    def wait(self, deadline: float) -> None:
        """Return on a signal, after the poll interval, or at `deadline` (monotonic)."""
        from redis import RedisError

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        if self._pubsub is None:
            time.sleep(min(POLL_SECONDS, remaining))
            return
        end = time.monotonic() + min(REDIS_POLL_SECONDS, remaining)
        try:
            while (left := end - time.monotonic()) > 0:
                msg = self._pubsub.get_message(timeout=left)
                if msg and msg.get("type") == "message":
                    return
        except (RedisError, OSError) as exc:
            _failed("wait", exc)
            self.close()
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        from redis import RedisError

        if self._pubsub is not None:
            with suppress(RedisError, OSError):
                self._pubsub.close()
            self._pubsub = None


@contextmanager
def listener(channels: tuple[str, ...] | None = None) -> Iterator[Listener]:
    """A long-poll wakes on new work and on cancel requests (a cancel frees capacity)."""
    listen = Listener(channels or (WORK_CHANNEL, CANCEL_CHANNEL))
    try:
        yield listen
    finally:
        listen.close()
