"""/healthz and /readyz: liveness never touches a dependency; readiness names the one
that failed, quickly, and never how to reach it."""

import socket
import time

import pytest
from django.db import OperationalError

from deltaci.version import VERSION

REDIS = "redis://127.0.0.1:6379/0"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A loopback port that accepts connections (backlog) and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    yield srv.getsockname()[1]
    srv.close()


def test_it_is_alive_without_touching_anything(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok", "version": VERSION}
    assert "no-cache" in resp["Cache-Control"]
    assert client.head("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_it_answers_only_get_and_head(client, db, path):
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)(path).status_code == 405


def test_it_is_ready_with_the_real_redis(client, db, settings):
    settings.CELERY_BROKER_URL = REDIS
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.content
    assert resp.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_it_is_ready_without_a_broker_to_reach(client, db, settings):
    for url in ("", "filesystem://", "memory://"):
        settings.CELERY_BROKER_URL = url
        assert client.get("/readyz").status_code == 200


def test_it_turns_503_naming_the_broker_when_it_is_unreachable(client, db, settings):
    settings.CELERY_BROKER_URL = f"redis://:hunter2-secret@127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    resp = client.get("/readyz")
    assert time.monotonic() - started < 2.5
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable"
    assert set(body["failed"]) == {"broker"}
    assert "hunter2" not in resp.content.decode() and "127.0.0.1" not in resp.content.decode()


def test_it_gives_up_on_a_broker_that_never_answers_within_the_bound(
    client, db, settings, silent_server
):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    started = time.monotonic()
    resp = client.get("/readyz")
    assert time.monotonic() - started < 3.0
    assert resp.status_code == 503 and set(resp.json()["failed"]) == {"broker"}


def test_it_fails_closed_on_a_malformed_broker_url(client, db, settings):
    for url in ("redis://127.0.0.1:notaport/0", "amqp://127.0.0.1:1//", "bogus-transport://x"):
        settings.CELERY_BROKER_URL = url
        resp = client.get("/readyz")
        assert resp.status_code == 503, url
        assert set(resp.json()["failed"]) == {"broker"}


def test_it_turns_503_naming_the_database_when_it_fails(client, db, settings, monkeypatch):
    settings.CELERY_BROKER_URL = REDIS
    from django.db import connection

    def refuse(*args, **kwargs):
        raise OperationalError("could not connect to server: password=hunter2")

    with monkeypatch.context() as m:
        m.setattr(connection, "cursor", refuse)
        resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["failed"] == {"database": "OperationalError"}
    assert "hunter2" not in resp.content.decode()


def test_the_probe_command_mirrors_readyz(db, settings, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.CELERY_BROKER_URL = REDIS
    call_command("ops_probe")
    assert '"ok"' in capsys.readouterr().out
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    with pytest.raises(CommandError, match="broker"):
        call_command("ops_probe")
