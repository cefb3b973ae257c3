"""Rust: every ``Cargo.toml`` with ``[package]`` is a crate. Edges from ``path``
dependencies (all dependency tables, target-specific ones too), ``workspace = true``
dependencies resolved through the workspace root's ``[workspace.dependencies]``, and
overrides: a ``[patch.<registry>]`` or ``[replace]`` entry pointing a crate name at a
path makes every crate of that workspace depending on the name (any version, any
table) depend on the path. Workspace members are matched with their globs; a root with
``[workspace]`` is global. An override pointing outside the repository widens the plan."""

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


def _dep_tables(data: dict[str, Any]) -> list[dict[str, Any]]:
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


Overrides = dict[str, tuple[str, str]]  # crate name -> (directory, mechanism)


def _overrides(data: dict[str, Any], base: str, path: str, result: EcosystemResult) -> Overrides:
    """``[patch.<registry>]`` and ``[replace]`` entries of one manifest that point at a
    path; those leaving the repository are reported (the plan widens)."""
    tables: list[tuple[str, Any]] = []
    patch = data.get("patch")
    for registry, table in sorted(patch.items()) if isinstance(patch, dict) else ():
        tables.append((f"[patch.{registry}]", table))
    tables.append(("[replace]", data.get("replace")))
    found: Overrides = {}
    for mechanism, table in tables:
        for key, spec in table.items() if isinstance(table, dict) else ():
            if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
                continue
            name = spec.get("package") if isinstance(spec.get("package"), str) else key
            name = str(name).partition(":")[0]  # [replace] keys are "name:version"
            target = join(base, spec["path"])
            if target is None:
                message = f"{mechanism} {name} points outside the repository ({spec['path']})"
                result.unreadable.append(Unreadable(path, ECOSYSTEM, message))
            else:
                found[name] = (target, mechanism)
    return found


def _edges(
    data: dict[str, Any], root: str, workspace: _Workspace | None, overrides: Overrides
) -> tuple[list[str], list[str], dict[str, str]]:
    requires, paths, mechanisms = [], [], {}
    for table in _dep_tables(data):
        for name, spec in table.items():
            package = spec.get("package") if isinstance(spec, dict) else None
            crate = package if isinstance(package, str) else name
            if crate in overrides:
                target, mechanism = overrides[crate]
                paths.append(target)
                mechanisms[target] = mechanism
            if not isinstance(spec, dict):
                continue
            if isinstance(spec.get("path"), str):
                paths.append(join(root, spec["path"]) or "")
            elif spec.get("workspace") is True:
                if workspace and workspace.paths.get(name):
                    paths.append(workspace.paths[name] or "")
                else:
                    requires.append(f"cargo:{crate}")
    return requires, [p for p in paths if p], mechanisms


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    parsed: dict[str, dict[str, Any] | None] = {}
    workspaces: list[_Workspace] = []
    overrides: dict[str, Overrides] = {}  # directory of the declaring manifest -> entries
    for path in src.named("Cargo.toml"):
        try:
            data = parsed[path] = src.parse(path)
        except ManifestError as exc:
            parsed[path] = None
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
            continue
        if found := _overrides(data, parent_dir(path), path, result):
            overrides[parent_dir(path)] = found
        table = data.get("workspace")
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
        # overrides apply to the whole workspace they are declared in (or to one crate)
        applied = overrides.get(workspace.root if workspace else root, {})
        requires, paths, mechanisms = _edges(data, root, workspace, applied)
        name = package.get("name")
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                path,
                IMAGE,
                steps,
                member=workspace is not None and workspace.root != root,
                provides=[f"cargo:{name}"] if isinstance(name, str) else [],
                mechanisms=mechanisms,
                requires=requires,
                path_deps=paths,
            )
        )
    return result
