"""Node: every ``package.json`` is a package unless it declares ``workspaces`` (npm/yarn)
or sits next to ``pnpm-workspace.yaml`` — those roots are global. Edges by workspace
package name in (dev/peer/optional) dependencies, the ``file:``/``link:``/``portal:``
(paths), ``workspace:`` and ``npm:`` (names) protocols, and overrides declared by a root
(yarn ``resolutions``, npm ``overrides``, ``pnpm.overrides``, pnpm-workspace.yaml
``overrides``): a package depending on an overridden name depends on its target."""

from typing import Any

from planner.discovery.common import (
    Sources,
    ancestors,
    in_dir,
    join,
    member_of,
    new_project,
    nothing,
    parent_dir,
    phases,
    string_list,
)
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, load_json, load_yaml

ECOSYSTEM = "node"
READ_NAMES = ("package.json", "pnpm-workspace.yaml")
PRESENT_NAMES = ("package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml")
IMAGE = "node:20"
PARSERS = {"package.json": load_json, "pnpm-workspace.yaml": load_yaml}
_DEP_FIELDS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")
_MANAGERS = (  # lockfile, install command, run prefix
    ("pnpm-lock.yaml", "corepack enable && pnpm install --frozen-lockfile", "pnpm run"),
    ("yarn.lock", "corepack enable && yarn install --frozen-lockfile", "yarn run"),
    ("package-lock.json", "npm ci", "npm run"),
    ("npm-shrinkwrap.json", "npm ci", "npm run"),
)


_LOCKS = tuple(m[0] for m in _MANAGERS)
_LOCAL = ("file:", "link:", "portal:")
# an unreadable package.json may define any script: each job runs (and shows the error)
_UNKNOWN_SCRIPTS = dict.fromkeys(("build", "test", "lint"), "")
_OVERRIDES = (("resolutions",), ("overrides",), ("pnpm", "overrides"))
Target = tuple[str, str, str]  # ("path", directory, mechanism) or ("key", "npm:name", ...)


def package_name(key: str) -> str:
    """The package an override key is about: ``**/a/@s/b@^1`` and ``x>@s/b@2`` -> ``@s/b``."""
    parts = key.rpartition(">")[2].strip().split("/")
    last = f"{parts[-2]}/{parts[-1]}" if len(parts) > 1 and parts[-2].startswith("@") else parts[-1]
    at = last.find("@", 1)
    return last[:at] if at > 0 else last


def _target(root: str, spec: str, mechanism: str) -> Target | str | None:
    """Where a dependency or override spec points: a local directory, an in-repo name,
    None (a registry version), or a message when it leaves the repository."""
    if ":" not in spec:
        return None  # a registry version: every protocol below has a colon
    if spec.startswith(_LOCAL):
        protocol, _, rest = spec.partition(":")
        directory = join(root, rest)
        if directory is None:
            return f"{mechanism} {spec!r} points outside the repository"
        return ("path", directory, f"{protocol}: protocol" if mechanism == "" else mechanism)
    for protocol in ("workspace:", "npm:"):
        if spec.startswith(protocol):
            rest = spec[len(protocol) :]
            if rest.startswith(("./", "../")):
                directory = join(root, rest)
                return (
                    ("path", directory, mechanism or "workspace: protocol") if directory else None
                )
            named = rest[:1].isalpha() or rest[:1] == "@"
            key = f"npm:{package_name(rest)}" if named else ""  # "" = the name itself
            return ("key", key, mechanism or f"{protocol} protocol")
    return None


def _overrides(
    root: str, data: dict[str, Any], pnpm: object, result: EcosystemResult, path: str
) -> dict[str, Target]:
    """Package name -> target for every override a workspace root declares."""
    found: dict[str, Target] = {}
    if pnpm is None and not any(keys[0] in data for keys in _OVERRIDES):
        return found  # most packages: no override table to read
    tables = [(".".join(keys), _dig(data, keys)) for keys in _OVERRIDES]
    tables.append(("pnpm-workspace.yaml overrides", _dig(pnpm, ("overrides",))))
    for mechanism, table in tables:
        for key, spec in _flatten(table):
            name = package_name(key)
            target = _target(root, spec, mechanism)
            if isinstance(target, str):
                result.unreadable.append(Unreadable(path, ECOSYSTEM, f"{name}: {target}"))
            elif target is not None:
                found[name] = target if target[1] else ("key", f"npm:{name}", mechanism)
    return found


def _dig(data: object, keys: tuple[str, ...]) -> object:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _flatten(table: object) -> list[tuple[str, str]]:
    """(key, spec) of an override table; npm's nested objects count at every level
    (``"."`` is the parent's own override)."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[str, object]] = [("", table)]
    while stack:
        parent, value = stack.pop()
        for key, spec in value.items() if isinstance(value, dict) else ():
            name = parent if key == "." else str(key)
            if isinstance(spec, str):
                out.append((name, spec))
            elif isinstance(spec, dict) and len(out) + len(stack) < 10_000:
                stack.append((name, spec))
    return sorted(out)


def _object(path: str, src: Sources) -> dict[str, Any]:
    data = src.parse(path)
    if not isinstance(data, dict):
        raise ManifestError("package.json is not a JSON object")
    return data


def _workspace_globs(data: dict[str, Any]) -> list[str]:
    workspaces = data.get("workspaces")
    if isinstance(workspaces, dict):
        workspaces = workspaces.get("packages")
    return string_list(workspaces)


def _steps(src: Sources, root: str, scripts: dict[str, Any], lock_dir: str) -> dict[str, list[str]]:
    """Install with the package manager of the nearest lockfile (a member uses its
    workspace root's), then run the script if the package defines it."""
    lock = src.nearest(lock_dir, _LOCKS)
    install, run = "npm install", "npm run"
    for name, manager_install, manager_run in _MANAGERS:
        if lock and lock.endswith(name):
            install, run = manager_install, manager_run
            break

    def script(name: str) -> list[str]:
        return [f"{run} {name}"] if name in scripts else [nothing(f"no {name} script")]

    return phases([install], script("build"), script("test"), script("lint"))


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    workspaces: list[tuple[str, list[str]]] = []
    parsed: dict[str, dict[str, Any] | None] = {}
    for path in src.named("pnpm-workspace.yaml"):
        result.global_paths.add(path)
        try:
            data = src.parse(path) or {}
            globs = string_list(data.get("packages")) if isinstance(data, dict) else []
            workspaces.append((parent_dir(path), globs))
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
    pnpm_roots = {parent_dir(p) for p in src.named("pnpm-workspace.yaml")}
    overrides: list[tuple[str, dict[str, Target]]] = []
    for path in src.named("package.json"):
        try:
            data = parsed[path] = _object(path, src)
        except ManifestError as exc:
            parsed[path] = None
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
            if path == "package.json":
                result.global_paths.add(path)  # it may be a workspace root: assume so
            continue
        root = parent_dir(path)
        if data.get("workspaces") is not None or root in pnpm_roots:
            result.global_paths.add(path)
            workspaces.append((root, _workspace_globs(data)))
        pnpm = _pnpm_document(src, root) if root in pnpm_roots else None
        if found := _overrides(root, data, pnpm, result, path):
            overrides.append((root, found))
    package_dirs = {parent_dir(p) for p in parsed}
    for path, data in parsed.items():
        root = parent_dir(path)
        if data is not None and (data.get("workspaces") is not None or root in pnpm_roots):
            continue  # a workspace root only aggregates its members
        workspace = next((w for w, globs in workspaces if member_of(root, w, globs, [])), None)
        member = workspace is not None
        if not member and _nested_package(src, root, package_dirs):
            continue  # an entry-point stub or a tool's configuration, not a project
        scripts = _UNKNOWN_SCRIPTS if data is None else data.get("scripts")
        scripts = scripts if isinstance(scripts, dict) else {}
        data = data or {}
        requires, local, mechanisms = _edges(data, root, overrides)
        name = data.get("name")
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                path,
                IMAGE,
                _steps(src, root, scripts, workspace or root),
                provides=[f"npm:{name}"] if isinstance(name, str) else [],
                mechanisms=mechanisms,
                member=member,
                requires=requires,
                path_deps=local,
            )
        )
    return result


def _nested_package(src: Sources, root: str, package_dirs: set[str]) -> bool:
    """A package.json inside another package's directory (the root's included) that no
    workspace names and that has no lockfile of its own."""
    if root == ".":
        return False
    if any(src.has(f"{root}/{lock}") for lock in _LOCKS):
        return False
    return any(d in package_dirs for d in ancestors(parent_dir(root)))


def _pnpm_document(src: Sources, root: str) -> object:
    try:
        return src.parse("pnpm-workspace.yaml" if root == "." else f"{root}/pnpm-workspace.yaml")
    except ManifestError:
        return None  # reported where the workspace is read


def _edges(
    data: dict[str, Any], root: str, overrides: list[tuple[str, dict[str, Target]]]
) -> tuple[list[str], list[str], dict[str, str]]:
    """(names it requires, directories it uses, edge -> mechanism) of one package."""
    requires: list[str] = []
    local: list[str] = []
    mechanisms: dict[str, str] = {}
    applied = [o for r, o in overrides if in_dir(root, r)]

    def add(target: Target) -> None:
        kind, value, mechanism = target
        (local if kind == "path" else requires).append(value)
        mechanisms.setdefault(value, mechanism)

    for field in _DEP_FIELDS:
        deps = data.get(field)
        for dep, spec in deps.items() if isinstance(deps, dict) else ():
            requires.append(f"npm:{dep}")
            target = _target(root, spec, "") if isinstance(spec, str) else None
            if isinstance(target, tuple):
                add(target if target[1] else ("key", f"npm:{dep}", target[2]))
            for table in applied:
                if dep in table:
                    add(table[dep])
    return requires, local, mechanisms
