"""Node: every ``package.json`` is a package unless it declares ``workspaces`` (npm/yarn)
or sits next to ``pnpm-workspace.yaml`` — those roots are global. Edges by workspace
package name in (dev/peer/optional) dependencies, and ``file:``/``link:`` paths."""

from planner.discovery.common import (
    Sources,
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


def _object(path: str, src: Sources) -> dict:
    data = src.parse(path)
    if not isinstance(data, dict):
        raise ManifestError("package.json is not a JSON object")
    return data


def _workspace_globs(data: dict) -> list[str]:
    workspaces = data.get("workspaces")
    if isinstance(workspaces, dict):
        workspaces = workspaces.get("packages")
    return string_list(workspaces)


def _steps(src: Sources, root: str, scripts: dict, workspaces: list) -> dict:
    """Install with the package manager of the nearest lockfile (a member uses its
    workspace root's), then run the script if the package defines it."""
    lock_dir = next((w for w, inc in workspaces if member_of(root, w, inc, [])), root)
    lock = src.nearest(lock_dir, tuple(m[0] for m in _MANAGERS))
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
    parsed: dict[str, dict | None] = {}
    for path in src.named("pnpm-workspace.yaml"):
        result.global_paths.add(path)
        try:
            data = src.parse(path) or {}
            globs = string_list(data.get("packages")) if isinstance(data, dict) else []
            workspaces.append((parent_dir(path), globs))
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
    pnpm_roots = {parent_dir(p) for p in src.named("pnpm-workspace.yaml")}
    for path in src.named("package.json"):
        try:
            parsed[path] = _object(path, src)
        except ManifestError as exc:
            parsed[path] = None
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
            if path == "package.json":
                result.global_paths.add(path)  # it may be a workspace root: assume so
            continue
        if parsed[path].get("workspaces") is not None or parent_dir(path) in pnpm_roots:
            result.global_paths.add(path)
            workspaces.append((parent_dir(path), _workspace_globs(parsed[path])))
    for path, data in parsed.items():
        root = parent_dir(path)
        if data is not None and (data.get("workspaces") is not None or root in pnpm_roots):
            continue  # a workspace root only aggregates its members
        data = data or {}
        scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
        requires, local = [], []
        for field in _DEP_FIELDS:
            deps = data.get(field)
            for dep, spec in deps.items() if isinstance(deps, dict) else ():
                requires.append(f"npm:{dep}")
                if isinstance(spec, str) and spec.startswith(("file:", "link:")):
                    local.append(join(root, spec.partition(":")[2]))
        name = data.get("name")
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                path,
                IMAGE,
                _steps(src, root, scripts, workspaces),
                provides=[f"npm:{name}"] if isinstance(name, str) else [],
                requires=requires,
                path_deps=[d for d in local if d],
            )
        )
    return result
