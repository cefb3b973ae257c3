"""Long-polling lease requests: with Redis a request wakes as soon as work is queued;
without Redis it polls; with Redis down nothing is lost or leased twice."""

import socket
import threading
import time
import uuid

import pytest
from django.db import connection

from apps.runners.actions import do_revoke_runner
from apps.runners.models import Lease, Runner
from apps.runs.models import JobAttempt
from lib import wakeup
from tests.conftest import job_spec
from tests.protocol.proto import Proto

pytestmark = pytest.mark.django_db(transaction=True)
REDIS = "redis://127.0.0.1:6379/15"


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(autouse=True)
def fresh_wakeup(monkeypatch):
    """Private channels (other test runs may share this Redis) and no back-off state."""
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setattr(wakeup, "WORK_CHANNEL", f"test:{tag}:work")
    monkeypatch.setattr(wakeup, "CANCEL_CHANNEL", f"test:{tag}:cancel")
    monkeypatch.setattr(wakeup, "_down_until", 0.0)
    monkeypatch.setattr(wakeup, "_clients", {})


class Waiters:
    """Counts long-polls that have claimed once and wait for a signal: tests wait on this
    event instead of sleeping."""

    def __init__(self) -> None:
        self.count, self.changed = 0, threading.Condition()

    def arrived(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def until(self, n: int, seconds: float = 5.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count >= n, seconds), "never waited"


@pytest.fixture
def waiters(monkeypatch):
    waiting, original = Waiters(), wakeup.Listener.wait

    def wait(self, deadline: float) -> None:
        waiting.arrived()
        original(self, deadline)

    monkeypatch.setattr(wakeup.Listener, "wait", wait)
    return waiting


class LongPoll(threading.Thread):
    def __init__(self, runner, wait: int) -> None:
        super().__init__(daemon=True)
        self.proto, self.wait, self.response, self.finished_at = Proto(runner), wait, None, None

    def run(self) -> None:
        try:
            self.response = self.proto.lease(wait_seconds=self.wait)
            self.finished_at = time.monotonic()
        finally:
            connection.close()


def until(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.skipif(not redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_with_redis_a_long_poll_wakes_when_work_is_queued(
    settings, runner, make_run, monkeypatch, waiters
):
    import redis

    settings.REDIS_URL = REDIS
    monkeypatch.setattr(wakeup, "REDIS_POLL_SECONDS", 30.0)  # only a signal can wake it soon
    client = redis.Redis.from_url(REDIS)
    poll = LongPoll(runner, wait=15)
    poll.start()
    until(lambda: client.pubsub_numsub(wakeup.WORK_CHANNEL)[0][1] == 1)
    waiters.until(1)  # past the claim that follows subscribing
    queued_at = time.monotonic()
    make_run([job_spec("a")])  # notify_work runs on commit
    poll.join(timeout=10)
    assert poll.response.status_code == 200
    assert poll.finished_at - queued_at < 2.0
    assert client.pubsub_numsub(wakeup.WORK_CHANNEL)[0][1] == 0  # unsubscribed


@pytest.mark.skipif(not redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_with_redis_an_empty_long_poll_answers_204_at_its_deadline(settings, runner):
    settings.REDIS_URL = REDIS
    started = time.monotonic()
    r = Proto(runner).lease(wait_seconds=1)
    assert r.status_code == 204 and 1.0 <= time.monotonic() - started < 3.0


def test_without_redis_a_long_poll_polls(settings, runner, make_run, waiters):
    settings.REDIS_URL = ""
    poll = LongPoll(runner, wait=10)
    poll.start()
    waiters.until(1)
    queued_at = time.monotonic()
    make_run([job_spec("a")])
    poll.join(timeout=10)
    assert poll.response.status_code == 200
    assert poll.finished_at - queued_at < wakeup.POLL_SECONDS + 1.0


def test_with_redis_down_no_job_is_lost_or_leased_twice(
    settings, runner_factory, make_run, waiters
):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    polls = [LongPoll(runner_factory(f"r{i}"), wait=3) for i in range(3)]
    for p in polls:
        p.start()
    waiters.until(3)
    make_run([job_spec("a")])  # the failed publish is logged, never raised
    for p in polls:
        p.join(timeout=10)
    codes = sorted(p.response.status_code for p in polls)
    assert codes == [200, 204, 204]
    assert Lease.objects.count() == 1 and JobAttempt.objects.get().state == "LEASED"


def test_a_failed_publish_backs_off_and_never_raises(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    wakeup.notify_work()
    assert wakeup._redis() is None  # backing off: later calls cost nothing
    wakeup.notify_cancel()
    with wakeup.listener() as listen:
        started = time.monotonic()
        listen.wait(time.monotonic() + 0.2)
        assert 0.15 <= time.monotonic() - started < 1.0


@pytest.mark.parametrize("change", ["revoked", "removed", "draining"])
def test_a_runner_changed_while_it_waits_gets_no_lease(settings, runner, make_run, waiters, change):
    # A runner revoked, deleted (or a test's database flushed) during its long poll once
    # claimed the next job anyway; a deleted one made the lease insert fail with a 500.
    settings.REDIS_URL = ""
    poll = LongPoll(runner, wait=10)
    poll.start()
    waiters.until(1)
    if change == "revoked":
        do_revoke_runner(runner, actor="test")
    elif change == "removed":
        Runner.objects.filter(pk=runner.pk).delete()
    else:
        Runner.objects.filter(pk=runner.pk).update(draining=True)
    make_run([job_spec("a")])
    poll.join(timeout=10)
    expected = 204 if change == "draining" else 401
    assert poll.response.status_code == expected, poll.response.content
    assert not Lease.objects.exists()
    assert JobAttempt.objects.get().state == "QUEUED"
