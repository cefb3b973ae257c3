"""Rust: every ``Cargo.toml`` with ``[package]`` is a crate. Edges from ``path``
dependencies (all dependency tables, target-specific ones too) and ``workspace = true``
dependencies resolved through the workspace root's ``[workspace.dependencies]``.
Workspace members are matched with their globs; a root with ``[workspace]`` is global."""

from typing import Any

from planner.discovery.common import (
    Sources,
    join,
    member_of,
    new_project,
    parent_dir,
    phases,
    string_list,
)
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, load_toml

ECOSYSTEM = "rust"
READ_NAMES = ("Cargo.toml",)
PRESENT_NAMES = ("Cargo.lock",)
IMAGE = "rust:1"
PARSERS = {"Cargo.toml": load_toml}
_DEP_TABLES = ("dependencies", "dev-dependencies", "build-dependencies")


def _dep_tables(data: dict[str, Any]) -> list[dict]:
    tables = [data.get(t) for t in _DEP_TABLES]
    targets = data.get("target")
    for target in targets.values() if isinstance(targets, dict) else ():
        if isinstance(target, dict):
            tables += [target.get(t) for t in _DEP_TABLES]
    return [t for t in tables if isinstance(t, dict)]


class _Workspace:
    def __init__(self, root: str, table: dict[str, Any]) -> None:
        self.root = root
        self.include = string_list(table.get("members"))
        self.exclude = string_list(table.get("exclude"))
        deps = table.get("dependencies")
        self.paths = {
            name: join(root, spec["path"])
            for name, spec in (deps.items() if isinstance(deps, dict) else ())
            if isinstance(spec, dict) and isinstance(spec.get("path"), str)
        }

    def covers(self, crate_root: str) -> bool:
        return crate_root == self.root or member_of(
            crate_root, self.root, self.include, self.exclude
        )


def _edges(data: dict[str, Any], root: str, workspace: _Workspace | None) -> tuple[list, list]:
    requires, paths = [], []
    for table in _dep_tables(data):
        for name, spec in table.items():
            if not isinstance(spec, dict):
                continue
            if isinstance(spec.get("path"), str):
                paths.append(join(root, spec["path"]))
            elif spec.get("workspace") is True:
                if workspace and workspace.paths.get(name):
                    paths.append(workspace.paths[name])
                else:
                    package = spec.get("package")
                    requires.append(f"cargo:{package if isinstance(package, str) else name}")
    return requires, [p for p in paths if p]


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    parsed: dict[str, dict[str, Any] | None] = {}
    workspaces: list[_Workspace] = []
    for path in src.named("Cargo.toml"):
        try:
            parsed[path] = src.parse(path)
        except ManifestError as exc:
            parsed[path] = None
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
            continue
        table = parsed[path].get("workspace")
        if isinstance(table, dict):
            result.global_paths.add(path)
            workspaces.append(_Workspace(parent_dir(path), table))
    steps = phases([], ["cargo build"], ["cargo test"], ["cargo clippy --all-targets"])
    for path, data in parsed.items():
        root = parent_dir(path)
        if data is None:
            result.projects.append(new_project(src, ECOSYSTEM, path, IMAGE, steps))
            continue
        package = data.get("package")
        if not isinstance(package, dict):
            continue  # a virtual workspace manifest
        workspace = next((w for w in reversed(workspaces) if w.covers(root)), None)
        requires, paths = _edges(data, root, workspace)
        name = package.get("name")
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                path,
                IMAGE,
                steps,
                provides=[f"cargo:{name}"] if isinstance(name, str) else [],
                requires=requires,
                path_deps=paths,
            )
        )
    return result
