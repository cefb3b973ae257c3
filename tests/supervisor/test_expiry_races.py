"""On PostgreSQL, with real row locks between two connections: a heartbeat or a Complete
that arrives while the supervisor is expiring the lease waits for it and is refused as
LEASE_EXPIRED, changing nothing; an expiry that arrives while a Complete holds the lease
waits for it and then finds nothing to expire."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.runners import leasing, supervisor
from apps.runners.models import Lease
from apps.runs.models import JobAttempt

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Worker(threading.Thread):
    """`call()` on its own thread, so on its own database connection."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call, self.result, self.error = call, None, None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:  # noqa: BLE001 - re-raised by outcome()
            self.error = exc
        finally:
            connection.close()

    def outcome(self) -> Any:
        self.join(20)
        assert not self.is_alive(), "never finished"
        if self.error is not None:
            raise self.error
        return self.result


def paused(monkeypatch, module: Any, name: str) -> tuple[threading.Event, threading.Event]:
    """`module.name` stops, once reached, until released: (reached, release)."""
    reached, release, real = threading.Event(), threading.Event(), getattr(module, name)

    def pausing(*args: Any, **kwargs: Any) -> Any:
        reached.set()
        assert release.wait(20), "never released"
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, pausing)
    return reached, release


def wait_for_a_blocked_backend(seconds: float = 20) -> None:
    """Until another connection of this database waits on a lock (PostgreSQL reports it;
    there is no event to wait on across connections)."""
    deadline = time.monotonic() + seconds
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        assert time.monotonic() < deadline, "nobody waited for the lock"
        time.sleep(0.01)


def states() -> tuple[str, list[tuple[int, str]]]:
    attempts = JobAttempt.objects.order_by("attempt_number")
    lease = Lease.objects.get(attempt__attempt_number=1)
    return lease.state, list(attempts.values_list("attempt_number", "state"))


def expiring_while(monkeypatch, message: Callable[[], Any], ttl: int) -> tuple[int, Any]:
    """The supervisor locks the lease and is about to expire it when `message` arrives."""
    reached, release = paused(monkeypatch, supervisor.leasing, "end_lease")
    due = timezone.now() + timedelta(seconds=ttl + 1)
    expiry = Worker(lambda: supervisor.expire_leases(due))
    expiry.start()
    assert reached.wait(20)
    sent = Worker(message)
    sent.start()
    wait_for_a_blocked_backend()
    release.set()
    return expiry.outcome(), sent.outcome()


def test_a_heartbeat_waiting_for_an_expiry_is_refused(make_run, proto, monkeypatch):
    make_run()
    g = proto.start()
    expired, answer = expiring_while(
        monkeypatch, lambda: proto.heartbeat(g["lease_id"]), g["lease_ttl_seconds"]
    )
    assert expired == 1
    assert answer.status_code == 409 and answer.json()["reason"] == "LEASE_EXPIRED"
    assert states() == ("EXPIRED", [(1, "STALE"), (2, "QUEUED")])


def test_a_complete_waiting_for_an_expiry_is_refused(make_run, proto, monkeypatch):
    make_run()
    g = proto.start()
    expired, answer = expiring_while(
        monkeypatch, lambda: proto.complete(g["lease_id"]), g["lease_ttl_seconds"]
    )
    assert expired == 1
    assert answer.status_code == 409 and answer.json()["reason"] == "LEASE_EXPIRED"
    assert states() == ("EXPIRED", [(1, "STALE"), (2, "QUEUED")])


def test_an_expiry_waiting_for_a_complete_finds_nothing_to_expire(make_run, proto, monkeypatch):
    make_run()
    g = proto.start()
    reached, release = paused(monkeypatch, leasing, "after_attempt_end")
    done = Worker(lambda: proto.complete(g["lease_id"]))
    done.start()
    assert reached.wait(20)  # the Complete holds the lease row, its transaction open
    due = timezone.now() + timedelta(seconds=g["lease_ttl_seconds"] + 1)
    expiry = Worker(lambda: supervisor.expire_leases(due))
    expiry.start()
    wait_for_a_blocked_backend()
    release.set()
    assert done.outcome().status_code == 200
    assert expiry.outcome() == 0
    assert states() == ("COMPLETED", [(1, "SUCCEEDED")])
