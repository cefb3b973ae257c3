"""Fingerprints and recipes. A recipe is a discovery result saved after a successful
run; it is reused only while the build files are byte-for-byte the same.

fingerprint = SHA-256 over ``path NUL sha256(content) LF`` for each build file in path
order (``-`` instead of the content hash for files whose presence alone matters).
"""

import hashlib
from collections.abc import Mapping
from typing import Any

from planner.discovery.model import Discovery

RECIPE_VERSION = 2  # 2: edges name their mechanism ("via")


def fingerprint(entries: Mapping[str, str | None]) -> str:
    digest = hashlib.sha256()
    for path in sorted(entries):
        digest.update(f"{path}\0{entries[path] or '-'}\n".encode("utf-8", "surrogateescape"))
    return f"sha256:{digest.hexdigest()}"


def make_recipe(discovery: Discovery, fingerprint_value: str) -> dict[str, Any]:
    return {"version": RECIPE_VERSION, "fingerprint": fingerprint_value, **discovery.to_recipe()}


def load_recipe(recipe: Any, fingerprint_value: str) -> Discovery | None:
    """The recipe's discovery if it matches this fingerprint and is well formed."""
    if not isinstance(recipe, dict) or recipe.get("version") != RECIPE_VERSION:
        return None
    if recipe.get("fingerprint") != fingerprint_value:
        return None
    try:
        discovery = Discovery.from_recipe(recipe)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    names = {p.name for p in discovery.projects}
    if len(names) != len(discovery.projects) or any(
        d not in names for p in discovery.projects for d in p.deps
    ):
        return None
    discovery.projects.sort(key=lambda p: p.name)
    return discovery
