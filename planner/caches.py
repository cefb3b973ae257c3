"""Caches a discovered job declares: its ecosystem's usual dependency store (and build
cache), keyed by the content of the lockfile that pins it — the git object id of the
nearest lockfile, or of the manifest when the ecosystem has no lockfile. A changed
lockfile gives a new key; the same lockfile, the same cache.

The policy's caching switch is honoured here (no caches at all when it is off); forks get
the same declarations and the control plane makes them read-only when it leases the job.
"""

from typing import Any

from planner.discovery.common import ancestors
from planner.discovery.model import Project

# ecosystem -> [(lockfile names, nearest first wins), cache type, paths, per project?]
_NODE = (
    (("pnpm-lock.yaml",), "pnpm-store", ("~/.local/share/pnpm/store",)),
    (("yarn.lock",), "yarn-cache", ("~/.cache/yarn", "~/.yarn/berry/cache")),
    (("package-lock.json", "npm-shrinkwrap.json"), "npm-cache", ("~/.npm",)),
)
_PYTHON = (
    (("uv.lock",), "uv-cache", ("~/.cache/uv",)),
    (("poetry.lock",), "poetry-cache", ("~/.cache/pypoetry", "~/.cache/pip")),
    (("requirements.txt",), "pip-cache", ("~/.cache/pip",)),
)


def _nearest(root: str, names: tuple[str, ...], oids: dict[str, str]) -> tuple[str, str] | None:
    for directory in ancestors(root):
        for name in names:
            path = name if directory == "." else f"{directory}/{name}"
            if path in oids:
                return path, oids[path]
    return None


def _cache(
    kind: str, source: tuple[str, str], paths: tuple[str, ...], scope: str = ""
) -> dict[str, Any]:
    path, oid = source
    key = f"{kind}:{scope + ':' if scope else ''}{path}:{oid}"
    return {"type": "deps", "key": key, "paths": list(paths)}


def caches_for(project: Project, oids: dict[str, str]) -> list[dict[str, Any]]:
    """The cache declarations of ``project``'s jobs (``oids``: build file -> object id)."""
    root, manifest = project.root, (project.manifest, oids.get(project.manifest, ""))
    if project.ecosystem in ("node", "python"):
        for names, kind, paths in _NODE if project.ecosystem == "node" else _PYTHON:
            if found := _nearest(root, names, oids):
                return [_cache(kind, found, paths)]
        kind = "npm-cache" if project.ecosystem == "node" else "pip-cache"
        return [_cache(kind, manifest, ("~/.npm",) if kind == "npm-cache" else ("~/.cache/pip",))]
    if project.ecosystem == "rust":
        lock: tuple[str, str] = _nearest(root, ("Cargo.lock",), oids) or manifest
        target = lock[0].rpartition("/")[0] + "/target" if "/" in lock[0] else "target"
        return [
            _cache("cargo-registry", lock, ("~/.cargo/registry", "~/.cargo/git")),
            _cache("cargo-target", lock, (target,), project.name),
        ]
    if project.ecosystem == "go":
        sums = _nearest(root, ("go.sum",), oids) or manifest
        return [
            _cache("go-mod", sums, ("~/go/pkg/mod",)),
            _cache("go-build", sums, ("~/.cache/go-build",), project.name),
        ]
    if project.ecosystem == "java":
        if project.manifest.endswith("pom.xml"):
            return [_cache("maven-repository", manifest, ("~/.m2/repository",))]
        return [_cache("gradle-caches", manifest, ("~/.gradle/caches", "~/.gradle/wrapper"))]
    if project.ecosystem == "dotnet":
        props = _nearest(root, ("packages.lock.json", "Directory.Packages.props"), oids)
        return [_cache("nuget-packages", props or manifest, ("~/.nuget/packages",))]
    return []
