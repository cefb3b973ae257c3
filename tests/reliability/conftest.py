import pytest

from tests.e2e.stack import free_port
from tests.protocol.proto import Proto


@pytest.fixture
def proto(runner):
    return Proto(runner)


@pytest.fixture
def store(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "store")},
        },
    }
    return tmp_path / "store"


@pytest.fixture
def broker_down(monkeypatch):
    """Celery sends to a Redis port nothing listens on (a broker outage); the eager
    mode the suite uses otherwise comes back afterwards. Yields a function that brings
    the 'broker' back (tasks run inline again)."""
    from deltaci.celery import app

    saved = (app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.broker_url, app.conf.CELERY_BROKER_URL)
    transport = app.conf.broker_transport_options

    def reset_pools():
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    dead = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("CELERY_BROKER_URL", dead)  # Celery reads the variable first
    app.conf.broker_url = app.conf.CELERY_BROKER_URL = dead
    app.conf.broker_transport_options = {"socket_connect_timeout": 1}
    reset_pools()

    def restore():
        monkeypatch.undo()
        app.conf.CELERY_TASK_ALWAYS_EAGER = saved[0]
        app.conf.broker_url, app.conf.CELERY_BROKER_URL = saved[1], saved[2]
        app.conf.broker_transport_options = transport
        reset_pools()

    yield restore
    restore()
