"""Python: a directory with ``pyproject.toml``, ``setup.cfg`` or ``setup.py`` is a
project (``setup.py`` is only detected, never run). Edges from PEP 621 / poetry /
dependency-group requirements naming a sibling project, and poetry/uv path sources.
A uv workspace root without ``[project]`` only aggregates its members (global)."""

import re
from typing import Any

from planner.discovery.common import (
    Sources,
    join,
    member_of,
    new_project,
    parent_dir,
    phases,
    requirement_name,
    string_list,
)
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, load_ini, load_toml

ECOSYSTEM = "python"
READ_NAMES = ("pyproject.toml", "setup.cfg")
PRESENT_NAMES = ("setup.py", "requirements.txt", "uv.lock", "poetry.lock")
IMAGE = "python:3.12"
PARSERS = {"pyproject.toml": load_toml, "setup.cfg": load_ini}
UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return "py:" + re.sub(r"[-_.]+", "-", name).lower()


def _table(data: Any, *keys: str) -> dict:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


class _Manifest:
    """What one project directory's Python manifests say."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.requires: list[str] = []
        self.paths: list[str] = []
        self.installable = False
        self.poetry = False
        self.ruff = False
        self.workspace: tuple[list[str], list[str]] | None = None

    def read_pyproject(self, data: dict[str, Any], base: str) -> None:
        project, poetry = _table(data, "project"), _table(data, "tool", "poetry")
        self.installable = self.installable or bool(project) or bool(poetry)
        self.poetry = bool(poetry)
        self.ruff = bool(_table(data, "tool", "ruff"))
        name = project.get("name") or poetry.get("name")
        self.name = name if isinstance(name, str) else self.name
        specs = string_list(project.get("dependencies"))
        optional = project.get("optional-dependencies")
        for group in optional.values() if isinstance(optional, dict) else ():
            specs += string_list(group)
        for group in _table(data, "dependency-groups").values():
            specs += string_list(group)
        self.requires += [n for n in map(requirement_name, specs) if n]
        tables = [_table(poetry, "dependencies"), _table(poetry, "dev-dependencies")]
        tables += [_table(g, "dependencies") for g in _table(poetry, "group").values()]
        tables.append(_table(data, "tool", "uv", "sources"))
        for table in tables:
            for dep, spec in table.items():
                if dep != "python":
                    self.requires.append(dep)
                if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                    self.paths.append(join(base, spec["path"]) or "")
        ws = _table(data, "tool", "uv", "workspace")
        if ws:
            self.workspace = (string_list(ws.get("members")), string_list(ws.get("exclude")))

    def read_setup_cfg(self, parser: Any) -> None:
        self.installable = True
        if parser.has_option("metadata", "name"):
            self.name = self.name or parser.get("metadata", "name").strip()
        if parser.has_option("options", "install_requires"):
            lines = parser.get("options", "install_requires").splitlines()
            self.requires += [n for n in map(requirement_name, lines) if n]


def _steps(src: Sources, root: str, manifest: _Manifest, uv_roots: list) -> tuple[str, dict]:
    """uv for workspace members and projects with their own uv.lock, then poetry, then pip."""
    own_lock = src.has("uv.lock" if root == "." else f"{root}/uv.lock")
    if own_lock or any(member_of(root, r, inc, exc) for r, inc, exc in uv_roots):
        run = ["uv sync --frozen"]
        return UV_IMAGE, phases(run, [], ["uv run pytest -q"], ["uvx ruff check ."])
    if manifest.poetry:
        setup = ["python -m pip install poetry", "poetry install"]
        return IMAGE, phases(setup, [], ["poetry run pytest -q"], ["poetry run ruff check ."])
    requirements = "requirements.txt" if root == "." else f"{root}/requirements.txt"
    setup = []
    if src.has(requirements):
        setup.append("python -m pip install -r requirements.txt")
    if manifest.installable:
        setup.append("python -m pip install -e .")
    lint = (
        ["python -m pip install ruff", "ruff check ."]
        if manifest.ruff
        else ["python -m compileall -q ."]
    )
    build = [] if setup else ["python -m compileall -q ."]
    return IMAGE, phases(setup, build, ["python -m pytest -q"], lint)


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    dirs: dict[str, list[str]] = {}
    for path in src.named("pyproject.toml", "setup.cfg", "setup.py"):
        dirs.setdefault(parent_dir(path), []).append(path)
    manifests: dict[str, _Manifest] = {}
    broken: set[str] = set()
    for root, paths in sorted(dirs.items()):
        manifest = manifests[root] = _Manifest()
        for path in paths:
            try:
                if path.endswith("pyproject.toml"):
                    manifest.read_pyproject(src.parse(path), root)
                elif path.endswith("setup.cfg"):
                    manifest.read_setup_cfg(src.parse(path))
                else:
                    manifest.installable = True  # setup.py: detected, never executed
            except ManifestError as exc:
                broken.add(root)
                result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
    uv_roots = [(r, *m.workspace) for r, m in sorted(manifests.items()) if m.workspace]
    for root, manifest in sorted(manifests.items()):
        pyproject = "pyproject.toml" if root == "." else f"{root}/pyproject.toml"
        if manifest.workspace is not None or (root == "." and root in broken):
            result.global_paths.add(pyproject)
            if manifest.workspace is not None and manifest.name is None:
                continue  # a virtual uv workspace root
        image, steps = _steps(src, root, manifest, uv_roots)
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                dirs[root][0],
                image,
                steps,
                provides=[normalize(manifest.name)] if manifest.name else [],
                requires=[normalize(r) for r in manifest.requires],
                path_deps=[p for p in manifest.paths if p],
            )
        )
    return result
