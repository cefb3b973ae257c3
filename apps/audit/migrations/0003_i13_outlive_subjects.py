"""Audit rows outlive their subjects: no constraint or SET NULL on the run and repository
ids, a `subject` label filled in for existing rows, and on PostgreSQL a trigger that
refuses UPDATE and DELETE on the table (for every client, not only this code)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat

TRIGGER = """
CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
CREATE TRIGGER audit_auditevent_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_append_only();
"""
DROP_TRIGGER = """
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_append_only();
"""


def label_existing_rows(apps, schema_editor):
    event = apps.get_model("audit", "AuditEvent")
    repository = apps.get_model("runs", "Repository")
    name = Subquery(repository.objects.filter(pk=OuterRef("repository_id")).values("name")[:1])
    rows = event.objects.using(schema_editor.connection.alias)
    rows.filter(run_id__isnull=False).update(
        subject=Concat(
            Value("run "),
            Cast("run_id", CharField()),
            Value(" of "),
            Coalesce(name, Value("")),
            output_field=CharField(),
        )
    )
    rows.filter(run_id__isnull=True, repository_id__isnull=False).update(
        subject=Concat(Value("repository "), Coalesce(name, Value("")), output_field=CharField())
    )


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_initial"),
        ("runs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="subject",
            field=models.CharField(
                blank=True,
                db_default="",
                help_text="the run and repository named, as they were",
                max_length=200,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="repository",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="runs.repository",
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                to="runs.run",
            ),
        ),
        migrations.RunPython(label_existing_rows, migrations.RunPython.noop),
        migrations.RunPython(add_trigger, drop_trigger),
    ]
