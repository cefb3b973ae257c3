"""Small typed checks that collect ``path.to.field: message`` problems instead of
stopping at the first, so the owner of a ci.ai.yaml sees everything at once."""

import datetime
import difflib
from collections.abc import Iterable
from typing import Any


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime.date):
        return "a date (quote it to make it a string)"
    return type(value).__name__


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Checker:
    def __init__(self, document: str) -> None:
        self.document = document  # names problems about the whole document
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path or self.document}: {message}")

    def mapping(
        self, value: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, got {type_name(value)}")
            return None
        allowed = list(allowed)
        for key in value:
            if not isinstance(key, str):
                self.add(path, f"key {key!r} must be a string")
            elif key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.add(join(path, key), f"unknown key{hint}; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                self.add(join(path, key), "is required")
        return value

    def string(self, value: Any, path: str, max_length: int = 4096) -> str | None:
        if not isinstance(value, str):
            self.add(path, f"must be a string, got {type_name(value)}")
            return None
        if not value.strip():
            self.add(path, "must not be empty")
            return None
        if len(value) > max_length:
            self.add(path, f"must be at most {max_length} characters")
            return None
        return value

    def strings(self, value: Any, path: str, *, non_empty: bool = False) -> list[str] | None:
        if not isinstance(value, list):
            self.add(path, f"must be a list of strings, got {type_name(value)}")
            return None
        if non_empty and not value:
            self.add(path, "must not be empty")
            return None
        items = [self.string(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if any(item is None for item in items):
            return None
        for i, item in enumerate(items):
            if item in items[:i]:
                self.add(f"{path}[{i}]", f"duplicate {item!r}")
        return [item for item in items if item is not None]

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(path, f"must be true or false, got {type_name(value)}")
            return None
        return value

    def integer(self, value: Any, path: str, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"must be an integer, got {type_name(value)}")
            return None
        number = int(value)
        if not low <= number <= high:
            self.add(path, f"must be between {low} and {high}")
            return None
        return number
