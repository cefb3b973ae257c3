"""lib/db.py, behind the hot paths: prepared statements behave like the ORM (same rows,
same conversions, same exception classes) on SQLite and PostgreSQL."""

import pytest
from django.db import IntegrityError, connection, transaction

from apps.runners.models import Lease, Runner
from lib.db import fetch_prepared, insert, model_from_row


def test_a_row_converts_like_the_orm(runner):
    fields = [f.attname for f in Runner._meta.concrete_fields]
    cols = ", ".join(f'"{f.column}"' for f in Runner._meta.concrete_fields)
    sql = f"SELECT {cols} FROM runners_runner WHERE id = %(id)s"  # noqa: S608
    rows = fetch_prepared(sql, {"id": runner.pk})
    built = model_from_row(Runner, fields, rows[0])
    loaded = Runner.objects.get(pk=runner.pk)
    for name in fields:
        assert getattr(built, name) == getattr(loaded, name), name
    assert isinstance(built.capabilities, list) and built.last_seen_at.tzinfo is not None


def test_insert_sets_the_key_and_database_errors_are_djangos(make_run, proto):
    make_run()
    granted = proto.take()
    lease = Lease.objects.get()
    copy = Lease(
        attempt_id=lease.attempt_id,
        runner_id=lease.runner_id,
        lease_hash="0" * 64,
        lease_prefix="0" * 12,
        granted_at=lease.granted_at,
        ack_deadline=lease.ack_deadline,
        expires_at=lease.expires_at,
    )
    with pytest.raises(IntegrityError), transaction.atomic():  # one lease per attempt
        insert(copy)
    assert Lease.objects.count() == 1 and granted["lease_id"]
    assert fetch_prepared("SELECT COUNT(*) FROM runners_lease", {})[0][0] == 1  # still usable


@pytest.mark.parametrize("prepared", [True, False])
def test_a_full_cycle_works_with_and_without_prepared_statements(
    settings, make_run, proto, prepared
):
    """DELTACI_PREPARED_STATEMENTS=false (behind an old PgBouncer) takes plain cursors."""
    from apps.runs.models import JobAttempt, StateEvent

    settings.DELTACI_PREPARED_STATEMENTS = prepared
    make_run()
    before = _prepared_on_server()
    lid = proto.take()["lease_id"]
    assert proto.ack(lid).status_code == 200
    assert proto.heartbeat(lid).status_code == 200
    assert proto.complete(lid).status_code == 200
    attempt = JobAttempt.objects.get()
    assert attempt.state == "SUCCEEDED"
    if connection.vendor == "postgresql":
        assert (_prepared_on_server() > before) is prepared
    moves = list(
        StateEvent.objects.filter(kind="attempt", object_id=attempt.pk)
        .order_by("id")
        .values_list("from_state", "to_state")
    )
    assert moves == [
        ("CREATED", "QUEUED"),
        ("QUEUED", "LEASED"),
        ("LEASED", "STARTING"),
        ("STARTING", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]


def _prepared_on_server() -> int:
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        # Executions of this session's prepared statements (PostgreSQL 14 and newer).
        cursor.execute("SELECT SUM(generic_plans + custom_plans) FROM pg_prepared_statements")
        return cursor.fetchone()[0] or 0
