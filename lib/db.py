"""Database helpers the state-changing code shares."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


def begin_write() -> None:
    """Take the database's write lock at the start of a transaction that reads and then
    writes. PostgreSQL needs nothing (row locks do the job). SQLite has no row locks,
    and a deferred transaction that has read cannot start writing once another writer
    has committed ('database is locked', with no wait): a no-op write first makes it
    wait for the lock (up to the busy timeout) before it reads anything."""
    if connection.vendor == "sqlite" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE runners_lease SET id = id WHERE 0")


@contextmanager
def write_transaction() -> Iterator[None]:
    """atomic() that reads and then writes: see begin_write()."""
    with transaction.atomic():
        begin_write()
        yield
