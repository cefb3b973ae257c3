"""The hand-written SQL (apps/runs/statements.py, apps/runners/statements.py) is checked
against the models: every table and column it names exists (on any database), no state
value is written into a text, and on PostgreSQL the start-up check plans every statement
and names the one that no longer fits the schema."""

import re

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.db import connection

from apps.runners import checks
from apps.runs import choices

QUOTED = re.compile(r'"([^"]+)"')


def schema() -> tuple[set[str], set[str]]:
    models = apps.get_models()
    tables = {m._meta.db_table for m in models}
    columns = {f.column for m in models for f in m._meta.concrete_fields}
    return tables, columns


def state_values() -> set[str]:
    enums = [v for v in vars(choices).values() if isinstance(v, type) and hasattr(v, "values")]
    return {value for enum in enums for value in enum.values if value.isupper()}


STATEMENTS = list(checks.all_statements())


def test_there_are_statements_to_check():
    names = {name.split("(")[0] for name, _, _ in STATEMENTS}
    assert {"claim", "lease_lookup", "renew", "count_live", "transition", "run_state"} <= names


@pytest.mark.parametrize(("name", "sql", "params"), STATEMENTS, ids=[s[0] for s in STATEMENTS])
def test_every_table_and_column_named_exists(name, sql, params):
    tables, columns = schema()
    unknown = {ident for ident in QUOTED.findall(sql) if ident not in tables | columns}
    assert not unknown, f"{name} names {sorted(unknown)}"


@pytest.mark.parametrize(("name", "sql", "params"), STATEMENTS, ids=[s[0] for s in STATEMENTS])
def test_no_state_value_is_written_into_a_statement(name, sql, params):
    written = {value for value in state_values() if f"'{value}'" in sql}
    assert not written, f"{name} has literals {sorted(written)}: pass them as parameters"
    assert set(re.findall(r"%\((\w+)\)s", sql)) <= set(params), f"{name} lacks parameters"


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_start_up_check_plans_every_statement_on_postgresql():
    assert run_checks(databases=["default"], tags=["database"]) == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_start_up_check_names_a_statement_that_no_longer_fits(monkeypatch):
    broken = ("renamed", 'SELECT "no_such_column" FROM "runners_lease"', {})
    monkeypatch.setattr(checks, "all_statements", lambda: iter([broken]))
    errors = checks.statements_plan(databases=["default"])
    assert [e.id for e in errors] == ["deltaci.E101"]
    assert "renamed" in errors[0].msg and "no_such_column" in errors[0].msg


def test_it_checks_nothing_on_sqlite(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite only")
    assert checks.statements_plan(databases=["default"]) == []
