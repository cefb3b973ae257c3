"""Upgrading from the previous release's schema (deploy/README.md, "Upgrading"): a real
database built at that release, with its data, migrated forward and used by this code;
`wait_for_migrations`, which holds new pods back until then; and the rule that keeps the
previous release's code working on the new schema during the roll (expand only)."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, migrations
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.models.fields import NOT_PROVIDED

from tests.upgrades.releases import PREVIOUS, RELEASES

ROOT = Path(__file__).resolve().parents[2]
# Operations that break the previous release's code while both run during a roll. A later
# release may drop what the code stopped using: mark such a migration `contract = "why"`.
BREAKING = (
    migrations.RemoveField,
    migrations.DeleteModel,
    migrations.RenameField,
    migrations.RenameModel,
    migrations.AlterModelTable,
)


def upgrade(database_url: str, data_dir: Path) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DELTACI_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "deltaci.settings",
        "CELERY_BROKER_URL": "",
        "REDIS_URL": "",
    }
    out = subprocess.run(
        [sys.executable, "-m", "tests.upgrades.upgrade_from_release", PREVIOUS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_database_of_the_previous_release_upgrades_and_its_queued_job_runs(tmp_path):
    seen = upgrade(f"sqlite:///{tmp_path / 'previous.sqlite3'}", tmp_path)
    assert seen["pending_after"] == []
    assert seen["granted_job"] == "build"


@pytest.mark.postgres
def test_the_same_upgrade_on_postgresql(tmp_path, django_db_blocker):
    settings = connection.settings_dict
    name = f"deltaci_upgrade_{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
        url = f"postgres://{auth}@{settings['HOST']}:{settings['PORT'] or 5432}/{name}"
        seen = upgrade(url, tmp_path)
        assert seen["pending_after"] == [] and seen["granted_job"] == "build"
    finally:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


def since_previous_release() -> list[migrations.Migration]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    released = {node for leaf in RELEASES[PREVIOUS] for node in loader.graph.forwards_plan(leaf)}
    ours = {app for app, _ in RELEASES[PREVIOUS]}
    return [
        migration
        for key, migration in sorted(loader.disk_migrations.items())
        if key[0] in ours and key not in released
    ]


def breaking_operations(migration: migrations.Migration) -> list[str]:
    """What in `migration` the previous release's code could not live with."""
    if getattr(migration, "contract", ""):
        return []
    found = []
    for op in migration.operations:
        if isinstance(op, BREAKING):
            found.append(type(op).__name__)
        elif isinstance(op, migrations.AddField):
            field = op.field
            if not (field.null or field.many_to_many or field.db_default is not NOT_PROVIDED):
                # The old code's INSERTs leave the column out: it needs a database default.
                found.append(f"AddField {op.model_name}.{op.name} (NOT NULL without db_default)")
    return found


def test_migrations_since_the_previous_release_only_expand():
    problems = {
        f"{m.app_label}.{m.name}": ops
        for m in since_previous_release()
        if (ops := breaking_operations(m))
    }
    assert not problems, problems


def test_the_expand_rule_catches_what_it_should():
    from django.db import models

    class Bad(migrations.Migration):
        operations = [
            migrations.RemoveField("run", "reason"),
            migrations.AddField("run", "weight", models.IntegerField(default=1)),
            migrations.AddField("run", "note", models.TextField(null=True)),
            migrations.AddField("run", "rank", models.IntegerField(db_default=0)),
        ]

    assert breaking_operations(Bad("0099_bad", "runs")) == [
        "RemoveField",
        "AddField run.weight (NOT NULL without db_default)",
    ]
    Bad.contract = "0.3.0 drops run.reason: 0.2.0 stopped reading it"
    assert breaking_operations(Bad("0099_bad", "runs")) == []


def test_the_release_record_names_real_migrations():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key in RELEASES[PREVIOUS]:
        assert key in loader.disk_migrations, key


@pytest.mark.django_db(transaction=True)
def test_wait_for_migrations_holds_until_the_schema_is_current(capsys):
    call_command("wait_for_migrations", "--timeout", "0")
    assert "schema is current" in capsys.readouterr().out
    executor = MigrationExecutor(connection)
    newest = executor.loader.graph.leaf_nodes("artifacts")
    executor.migrate([("artifacts", "0002_initial")])
    try:
        with pytest.raises(CommandError, match=r"\d+ migration\(s\) not applied: artifacts\.0003"):
            call_command("wait_for_migrations", "--timeout", "0")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(newest)
    call_command("wait_for_migrations", "--timeout", "0")


@pytest.mark.parametrize("args", [["--timeout", "-1"], ["--timeout", "1e9"], ["--interval", "0"]])
def test_wait_for_migrations_refuses_unusable_limits(db, args):
    with pytest.raises(CommandError, match="--timeout must be"):
        call_command("wait_for_migrations", *args)
