"""Names for hand-written SQL, taken from model metadata so that a renamed table or
column changes the statement with it (a literal name would keep every SQLite test green
and break PostgreSQL). Values never go into the text: they are parameters."""

from collections.abc import Iterable
from typing import Any


def table(model: Any) -> str:
    """The quoted table of `model`."""
    return f'"{model._meta.db_table}"'


def col(model: Any, name: str, alias: str = "") -> str:
    """The quoted column of field `name` (a field name or attname), with a table alias."""
    column = model._meta.get_field(name).column
    return f'{alias}."{column}"' if alias else f'"{column}"'


def in_list(prefix: str, values: Iterable[str]) -> tuple[str, dict[str, str]]:
    """`(%(p0)s, %(p1)s, …)` and its parameters: a fixed set of values (states) bound as
    parameters, so the text stays the same and holds no literal."""
    params = {f"{prefix}{i}": str(v) for i, v in enumerate(values)}
    return "(" + ", ".join(f"%({k})s" for k in params) + ")", params
