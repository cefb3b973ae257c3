"""Python: a directory with ``pyproject.toml``, ``setup.cfg`` or ``setup.py`` is a
project (``setup.py`` is only detected, never run). Edges from PEP 621 / poetry /
dependency-group requirements naming a sibling project, poetry path dependencies,
``[tool.uv.sources]`` (path and workspace) and ``[tool.uv] override-dependencies`` with a
local direct reference; a uv workspace root's sources and overrides apply to every
member requiring the name. A uv workspace root without ``[project]`` only aggregates its
members (global). An override or path leaving the repository widens the plan."""

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
_SEPARATORS = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return "py:" + _SEPARATORS.sub("-", name).lower()


def _table(data: Any, *keys: str) -> dict[str, Any]:
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
        self.mechanisms: dict[str, str] = {}  # edge key -> mechanism
        self.redirects: dict[str, tuple[str, str]] = {}  # name -> (edge key, mechanism)
        self.outside: list[str] = []  # overrides that leave the repository

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
        poetry_tables = [_table(poetry, "dependencies"), _table(poetry, "dev-dependencies")]
        poetry_tables += [_table(g, "dependencies") for g in _table(poetry, "group").values()]
        tables = [(t, "a poetry path dependency") for t in poetry_tables]
        tables.append((_table(data, "tool", "uv", "sources"), "[tool.uv.sources]"))
        for table, mechanism in tables:
            for dep, spec in table.items():
                if dep != "python":
                    self.requires.append(dep)
                if not isinstance(spec, dict):
                    continue
                if isinstance(spec.get("path"), str):
                    self._redirect(dep, base, spec["path"], mechanism)
                elif spec.get("workspace") is True and mechanism.startswith("[tool.uv"):
                    self.redirects[normalize(dep)] = (normalize(dep), f"{mechanism} workspace")
                    self.mechanisms[normalize(dep)] = f"{mechanism} workspace"
        for spec in string_list(_table(data, "tool", "uv").get("override-dependencies")):
            name, _, url = spec.partition("@")
            local = _local_reference(url.split(";")[0].strip())
            if (overridden := requirement_name(name)) and local is not None:
                self._redirect(overridden, base, local, "[tool.uv] override-dependencies")
        ws = _table(data, "tool", "uv", "workspace")
        if ws:
            self.workspace = (string_list(ws.get("members")), string_list(ws.get("exclude")))

    def _redirect(self, dep: str, base: str, path: str, mechanism: str) -> None:
        directory = join(base, path)
        if directory is None:
            self.outside.append(f"{mechanism} {dep} points outside the repository ({path})")
            return
        self.paths.append(directory)
        self.mechanisms[directory] = mechanism
        self.redirects[normalize(dep)] = (directory, mechanism)

    def read_setup_cfg(self, parser: Any) -> None:
        self.installable = True
        if parser.has_option("metadata", "name"):
            self.name = self.name or parser.get("metadata", "name").strip()
        if parser.has_option("options", "install_requires"):
            lines = parser.get("options", "install_requires").splitlines()
            self.requires += [n for n in map(requirement_name, lines) if n]


def _local_reference(url: str) -> str | None:
    """The repository-relative path of a ``file:`` direct reference, else None."""
    if not url.startswith("file:"):
        return None
    path = url.removeprefix("file://").removeprefix("file:")
    for root in ("/${PROJECT_ROOT}/", "${PROJECT_ROOT}/"):
        if path.startswith(root):
            return path[len(root) :]
    return path


def _steps(
    src: Sources, root: str, manifest: _Manifest, uv_roots: list[tuple[str, list[str], list[str]]]
) -> tuple[str, dict[str, list[str]]]:
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
        for message in manifest.outside:
            result.unreadable.append(Unreadable(paths[0], ECOSYSTEM, message))
    uv_roots = [(r, *m.workspace) for r, m in sorted(manifests.items()) if m.workspace]
    for root, manifest in sorted(manifests.items()):
        pyproject = "pyproject.toml" if root == "." else f"{root}/pyproject.toml"
        if manifest.workspace is not None or (root == "." and root in broken):
            result.global_paths.add(pyproject)
            if manifest.workspace is not None and manifest.name is None:
                continue  # a virtual uv workspace root
        image, steps = _steps(src, root, manifest, uv_roots)
        requires = [normalize(r) for r in manifest.requires]
        paths, mechanisms = [p for p in manifest.paths if p], dict(manifest.mechanisms)
        for r, include, exclude in uv_roots:  # the workspace root's sources and overrides
            if not member_of(root, r, include, exclude):
                continue
            for name, (key, mechanism) in manifests[r].redirects.items():
                if name in requires and name not in manifest.redirects:
                    (requires if key == name else paths).append(key)
                    mechanisms[key] = f"{mechanism} of the workspace"
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                dirs[root][0],
                image,
                steps,
                mechanisms=mechanisms,
                member=any(member_of(root, r, inc, exc) for r, inc, exc in uv_roots),
                provides=[normalize(manifest.name)] if manifest.name else [],
                requires=requires,
                path_deps=paths,
            )
        )
    return result
