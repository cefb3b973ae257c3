"""On PostgreSQL the audit table refuses UPDATE and DELETE from any client, including
raw SQL that bypasses the model (migration audit 0003)."""

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.actions import record
from apps.audit.models import AuditEvent


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET actor = 'someone else'",
        "UPDATE audit_auditevent SET run_id = NULL",
        "DELETE FROM audit_auditevent",
    ],
)
def test_the_database_refuses_to_rewrite_or_delete_audit_rows(db, repo, sql):
    event = record("policy.update", actor="user:olga", repository=repo)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    row = AuditEvent.objects.get(pk=event.pk)
    assert row.actor == "user:olga" and row.repository_id == repo.pk


@pytest.mark.postgres
def test_inserts_still_work_and_the_trigger_is_installed(db):
    record("retention.run", actor="beat")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass"
            " AND NOT tgisinternal"
        )
        assert [r[0] for r in cursor.fetchall()] == ["audit_auditevent_append_only"]
    assert AuditEvent.objects.filter(action="retention.run").count() == 1


def test_python_refuses_too(db, repo):
    event = record("policy.update", actor="user:olga", repository=repo)
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(PermissionError):
        event.save()
