"""JSON from untrusted senders, bounded in depth. Python's decoder raises RecursionError
(not ValueError) on deep nesting, and a document just shallow enough to decode can still
overflow the stack later (validation, copies, the database's encoder). Every JSON entry
point goes through here: DRF views through StrictJSONParser, the webhook directly."""

import json
from collections.abc import Iterable
from typing import Any

# Far deeper than any message of the protocol, the run API or a GitHub payload.
MAX_DEPTH = 64


class TooDeep(ValueError):
    """The document nests deeper than MAX_DEPTH (a ValueError like any bad JSON)."""


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """`value` unchanged, or TooDeep. Iterative: no recursion of its own."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise TooDeep(f"JSON nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)
    return value


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that answers every malformed or too deep document with a ValueError."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels") from None
    return check_depth(value, max_depth)
