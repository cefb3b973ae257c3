"""Real processes for the fault-injection suite: the e2e stack (gunicorn, a Celery
worker, reference runners) on the test's PostgreSQL database, with a PRIVATE Redis on a
free port as broker and wake-up channel, so a test may stop and start it (the shared
Redis on 6379 is never touched). PostgreSQL + Redis only."""

import contextlib
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.runners.actions import do_create_registration_token
from apps.runs.choices import RUN_TERMINAL
from apps.runs.models import Run
from tests.e2e.stack import Stack, free_port


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    reason = None
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"] or not settings.REDIS_URL:
        reason = "fault injection runs on PostgreSQL + Redis only"
    elif not shutil.which("redis-server"):
        reason = "needs redis-server (for a private instance)"
    for item in items:
        if reason and "faults" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


class PrivateRedis:
    """A redis-server of our own on a free loopback port: stop() is a real outage."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        for _ in range(100):
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _redis_up_again(private_redis):
    """A test that stopped the private Redis and failed leaves it running for the next."""
    yield
    if private_redis.proc is None:
        private_redis.start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_setup, django_db_blocker, private_redis):
    s = Stack(
        tmp_path_factory.mktemp("faults"),
        CELERY_BROKER_URL=private_redis.url,
        REDIS_URL=private_redis.url,
    ).start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _test_process_uses_the_stack(settings, stack, private_redis, monkeypatch):
    """Work this process does (supervisor and reconciler passes) reads and writes where
    the servers do, and sends its tasks to the stack's worker through the private Redis
    (not inline, as the rest of the suite does)."""
    from deltaci.celery import app

    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(stack.data_dir / "artifacts")},
        },
    }
    settings.REDIS_URL = private_redis.url
    settings.DELTACI_MIRROR_DIR = stack.data_dir / "mirrors"
    saved = (app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.broker_url, app.conf.CELERY_BROKER_URL)
    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setenv("CELERY_BROKER_URL", private_redis.url)  # Celery reads it first
    app.conf.broker_url = app.conf.CELERY_BROKER_URL = private_redis.url
    app._pool, app.amqp._producer_pool = None, None
    yield
    app.conf.CELERY_TASK_ALWAYS_EAGER = saved[0]
    app.conf.broker_url, app.conf.CELERY_BROKER_URL = saved[1], saved[2]
    app._pool, app.amqp._producer_pool = None, None


@pytest.fixture
def token(db):
    return do_create_registration_token(name="faults")[1]


def finished(run: Run) -> bool:
    """The run ended; the supervisor's safety-net pass runs first, as beat runs it every
    few seconds in a deployment (two Completes of a run's last two jobs committing at
    the same moment each see the other job still running, and neither ends the run)."""
    from apps.runners.supervisor import advance_runs

    advance_runs()
    run.refresh_from_db()
    return run.state in RUN_TERMINAL


def later(seconds: float) -> timezone.datetime:
    return timezone.now() + timedelta(seconds=seconds)
