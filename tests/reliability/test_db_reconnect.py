"""After a PostgreSQL restart (here: the server ends this thread's backend with
pg_terminate_backend), the first runner message answers normally instead of 500: the
prepared-statement path notices the dead connection and reconnects once (issue 13,
item 13). Only backends of this test's own database are touched."""

import pytest
from django.db import OperationalError, close_old_connections, connection, transaction

from apps.runs.models import Run
from lib.db import fetch_prepared
from tests.e2e.stack import terminate_backends

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def terminate_my_backend() -> None:
    """End the backend serving this thread's Django connection, from another session."""
    pid = fetch_prepared("SELECT pg_backend_pid()", {})[0][0]
    assert terminate_backends(only=pid) == 1


def new_request() -> None:
    """What a server does when a request starts (the test client skips it): Django
    re-arms its health check, which covers its own cursors but not prepared ones."""
    close_old_connections()


def test_the_first_runner_message_after_a_restart_answers_normally(proto):
    assert proto.lease().status_code == 204  # the connection is open and prepared
    terminate_my_backend()
    new_request()
    r = proto.lease()
    assert r.status_code == 204, r.content
    assert proto.lease().status_code == 204


@pytest.mark.parametrize("prepared", [True, False])
def test_a_heartbeat_after_a_restart_renews_the_lease(settings, make_run, proto, prepared):
    """With prepared statements off, Django's own health check does the same."""
    settings.DELTACI_PREPARED_STATEMENTS = prepared
    make_run()
    lid = proto.start()["lease_id"]
    terminate_my_backend()
    new_request()
    r = proto.heartbeat(lid)
    assert r.status_code == 200, r.content


def test_inside_a_transaction_the_error_stands(db):
    fetch_prepared("SELECT 1", {})
    terminate_my_backend()
    with pytest.raises(OperationalError), transaction.atomic():
        fetch_prepared("SELECT 1", {})
        Run.objects.count()  # never reached: nothing of the transaction runs on a new one
    connection.close()
    assert fetch_prepared("SELECT 1", {}) == [(1,)]
