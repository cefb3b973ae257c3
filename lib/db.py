"""Database helpers the state-changing code shares."""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction


def begin_write() -> None:
    """Take the database's write lock at the start of a transaction that reads and then
    writes. PostgreSQL needs nothing (row locks do the job). SQLite has no row locks,
    and a deferred transaction that has read cannot start writing once another writer
    has committed ('database is locked', with no wait): a no-op write first makes it
    wait for the lock (up to the busy timeout) before it reads anything. It writes to
    Django's own migration table, which every database here has, so lib/ names no
    app's table."""
    if connection.vendor == "sqlite" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE django_migrations SET id = id WHERE 0")


@contextmanager
def write_transaction() -> Iterator[None]:
    """atomic() that reads and then writes: see begin_write()."""
    with transaction.atomic():
        begin_write()
        yield


def fetch_prepared(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of a fixed, hot statement, run as a server-side prepared statement on
    PostgreSQL, so it is planned once per connection instead of once per call (for the
    heartbeat's renewal, planning is most of the database's work). Django's own cursors
    bind parameters client-side, which rules that out. Other databases: a plain cursor.

    Set DELTACI_PREPARED_STATEMENTS = False behind a transaction-mode connection pooler
    that cannot keep prepared statements (PgBouncer before 1.21)."""
    conn = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: each proxy access costs
    if conn.vendor != "postgresql" or not settings.DELTACI_PREPARED_STATEMENTS:
        with conn.cursor() as plain:
            plain.execute(sql, params)
            return plain.fetchall() if plain.description else []
    cursor = _prepared_cursor(conn)
    try:
        try:
            cursor.execute(sql, params, prepare=True)
        except Exception:
            if not _reconnect_after_loss(conn, cursor):
                raise
            cursor = _prepared_cursor(conn)
            cursor.execute(sql, params, prepare=True)
        return cursor.fetchall() if cursor.description else []
    except Exception:
        with conn.wrap_database_errors:  # Django's exception classes, errors_occurred set
            raise


def _reconnect_after_loss(conn: Any, cursor: Any) -> bool:
    """After a PostgreSQL restart (or pg_terminate_backend) a kept connection is dead,
    and this path, unlike Django's cursors, skips Django's per-request health check:
    the first statement on each thread would fail. When the statement failed because
    the connection is gone and no transaction was open (so nothing of the caller's is
    lost, and the statement never ran), drop the connection so the caller may retry
    once on a new one. Inside a transaction the error stands, as Django's would."""
    if conn.in_atomic_block or not (cursor.connection.closed or cursor.connection.broken):
        return False
    conn.close()
    return True


def _prepared_cursor(conn: Any) -> Any:
    """This thread's prepared-statement cursor on the current connection (Django
    connections are per thread), made anew after a reconnect."""
    import psycopg

    raw = conn.connection
    cursor = conn.__dict__.get("_prepared_cursor")
    if raw is not None and cursor is not None and cursor.connection is raw and not cursor.closed:
        return cursor
    conn.ensure_connection()
    raw = conn.connection
    if raw.prepare_threshold is None:  # Django turns preparing off; its own cursors bind
        raw.prepare_threshold = 1_000_000  # client-side and never prepare anyway
    conn._prepared_cursor = psycopg.Cursor(raw)
    return conn._prepared_cursor


def model_from_row(model: Any, attnames: list[str] | tuple[str, ...], values: Any) -> Any:
    """A model instance from a raw row: `attnames` in the model's field order (what
    Model.from_db() expects), each value converted as the ORM converts it (JSON arrives
    as text; SQLite's datetimes as strings)."""
    converted = [
        _convert(value, converters)
        for value, converters in zip(
            values, _converters(model, tuple(attnames), connection.vendor), strict=True
        )
    ]
    return model.from_db(connection.alias, list(attnames), converted)


def models_from_row(layout: Any, values: Any) -> tuple[list[Any], list[Any]]:
    """Several models side by side in one joined row: `layout` is (model, attnames) per
    model, in column order. A model whose first column is NULL (a LEFT JOIN that found
    nothing) comes back as None. Also returns the columns left after the last model."""
    values = list(values)
    built = []
    for model, names in layout:
        part, values = values[: len(names)], values[len(names) :]
        built.append(None if part[0] is None else model_from_row(model, names, part))
    return built, values


def _convert(value: Any, converters: list[tuple[Any, Any]]) -> Any:
    for convert, col in converters:
        value = convert(value, col, connection)
    return value


@functools.cache
def _converters(model: Any, attnames: tuple[str, ...], vendor: str) -> list[list[Any]]:
    fields = {f.attname: f for f in model._meta.concrete_fields}
    out = []
    for name in attnames:
        col = fields[name].get_col(model._meta.db_table)
        convs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        out.append([(c, col) for c in convs])
    return out


def insert(obj: Any) -> Any:
    """INSERT an unsaved model instance with one prepared statement (what save() does
    for a new row, without compiling the query each time); sets its primary key."""
    model: Any = type(obj)
    sql, fields = _insert_sql(model, connection.vendor)
    params = {
        f"f{i}": f.get_db_prep_save(f.pre_save(obj, True), connection) for i, f in enumerate(fields)
    }
    obj.pk = fetch_prepared(sql, params)[0][0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


@functools.cache
def _insert_sql(model: Any, vendor: str) -> tuple[str, list[Any]]:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    cols = ", ".join(f'"{f.column}"' for f in fields)
    values = ", ".join(f"%(f{i})s" for i in range(len(fields)))
    pk = model._meta.pk.column
    sql = f'INSERT INTO {model._meta.db_table} ({cols}) VALUES ({values}) RETURNING "{pk}"'  # noqa: S608
    return sql, fields
