"""Lockfile-aware impact: when a workspace lockfile changes, parse both versions and
find the projects whose resolved dependencies changed, instead of planning everything.

Each format becomes one ``Resolution``: packages (key -> a fingerprint of the entry and
the keys it depends on) and importers (project directory -> the keys it uses directly).
A package changed when its entry differs; a project is impacted when its direct keys
differ or any package it reaches changed. Formats without importers (yarn.lock,
poetry.lock, go.work.sum) are read by package name, the projects' direct keys coming from
their manifests. A lockfile that cannot be parsed returns None: the caller widens the plan
as for any global file.
"""

import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from planner.discovery.common import basename, in_dir, parent_dir, relative
from planner.discovery.model import Project
from planner.manifests import ManifestError, decode_text, load_toml, load_yaml

MAX_LOCKFILE_BYTES = 16 * 1024 * 1024  # beyond: a global file (bounded memory)


@dataclass
class Resolution:
    packages: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    importers: dict[str, frozenset[str]] | None = None  # None: by manifest names


def _fingerprint(entry: Any) -> str:
    """What an entry says, as text (``repr`` runs in C; an entry whose keys merely moved
    counts as changed, which only widens the plan)."""
    return repr(entry)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _npm(data: Any) -> Resolution:
    """package-lock.json / npm-shrinkwrap.json v2+: ``packages`` keyed by install path;
    a dependency resolves to the nearest ``node_modules/<name>`` up the path."""
    packages = _mapping(_mapping(data).get("packages"))
    if not packages:
        raise ManifestError("no packages section (lockfileVersion 1 is not read)")

    def resolve(location: str, name: str) -> str | None:
        while True:
            candidate = f"{location}/node_modules/{name}" if location else f"node_modules/{name}"
            if candidate in packages:
                return candidate
            if not location:
                return None
            cut = location.rfind("/node_modules/")
            location = location[:cut] if cut > 0 else ""

    importers: dict[str, frozenset[str]] = {}
    res = Resolution(importers=importers)
    for key, entry in packages.items():
        entry = _mapping(entry)
        names = [n for f in ("dependencies", "optionalDependencies", "peerDependencies",
                             "devDependencies") for n in _mapping(entry.get(f))]  # fmt: skip
        if entry.get("link") and isinstance(entry.get("resolved"), str):
            deps: tuple[str, ...] = (entry["resolved"],)
        else:
            deps = tuple(sorted({d for n in names if (d := resolve(key, str(n)))}))
        res.packages[key] = (_fingerprint(entry), deps)
        if "node_modules/" not in f"{key}/":
            importers[key or "."] = frozenset((key,))
    return res


def _pnpm(data: Any) -> Resolution:
    """pnpm-lock.yaml (v6 to v9): importers by directory, packages and snapshots keyed
    ``name@version`` (v6: ``/name@version``)."""
    data = _mapping(data)
    by_directory = _mapping(data.get("importers")) or {".": data}
    packages, snapshots = _mapping(data.get("packages")), _mapping(data.get("snapshots"))
    entries = {**packages, **snapshots}

    def key(name: str, version: Any) -> str:
        version = str(version.get("version") if isinstance(version, dict) else version)
        if version.startswith(("link:", "file:", "workspace:")):
            return f"{name}@{version}"
        for candidate in (f"{name}@{version}", f"/{name}@{version}", f"/{name}/{version}"):
            if candidate in entries:
                return candidate
        return version if version in entries else f"{name}@{version}"

    def deps_of(entry: Any) -> tuple[str, ...]:
        entry = _mapping(entry)
        fields = ("dependencies", "optionalDependencies", "devDependencies")
        return tuple(sorted(key(n, v) for f in fields for n, v in _mapping(entry.get(f)).items()))

    importers: dict[str, frozenset[str]] = {}
    res = Resolution(importers=importers)
    for name, entry in entries.items():
        both = [packages.get(name), snapshots.get(name)]
        res.packages[str(name)] = (_fingerprint(both), deps_of(entry))
    for directory, entry in by_directory.items():
        if not isinstance(entry, dict):
            raise ManifestError(f"importer {str(directory)[:80]!r} is not a mapping")
        deps = deps_of(entry)
        res.packages[f"importer:{directory}"] = (_fingerprint(entry), deps)
        importers[str(directory)] = frozenset((f"importer:{directory}",))
    return res


def _cargo(data: Any) -> Resolution:
    """Cargo.lock: ``[[package]]`` by ``name version``; workspace crates have no source
    and are the importers (by crate name, ``cargo:NAME``)."""
    packages = [p for p in _mapping(data).get("package", []) if isinstance(p, dict)]
    versions: dict[str, list[str]] = {}
    for p in packages:
        versions.setdefault(str(p.get("name")), []).append(str(p.get("version")))

    def key(dep: str) -> str:
        parts = dep.split(" ")
        if len(parts) == 1 and len(versions.get(parts[0], [])) == 1:
            return f"{parts[0]} {versions[parts[0]][0]}"
        return " ".join(parts[:2])

    importers: dict[str, frozenset[str]] = {}
    res = Resolution(importers=importers)
    for p in packages:
        own = f"{p.get('name')} {p.get('version')}"
        deps = [key(str(d)) for d in p.get("dependencies", []) if isinstance(d, str)]
        res.packages[own] = (_fingerprint(p), tuple(sorted(deps)))
        if "source" not in p:
            importers[f"cargo:{p.get('name')}"] = frozenset((own,))
    return res


def _uv(data: Any) -> Resolution:
    """uv.lock: ``[[package]]`` by name (and version); members are the packages whose
    source is editable, virtual or a workspace path (importers by directory)."""
    packages = [p for p in _mapping(data).get("package", []) if isinstance(p, dict)]
    importers: dict[str, frozenset[str]] = {}
    res = Resolution(importers=importers)

    def deps_of(p: dict[str, Any]) -> tuple[str, ...]:
        found = list(p.get("dependencies", []))
        for table in ("optional-dependencies", "dev-dependencies"):
            for group in _mapping(p.get(table)).values():
                found += group if isinstance(group, list) else []
        return tuple(sorted({_norm(str(_mapping(d).get("name"))) for d in found}))

    for p in packages:
        name = _norm(str(p.get("name")))
        previous = res.packages.get(name, ("", ()))
        deps = tuple(sorted({*previous[1], *deps_of(p)}))
        res.packages[name] = (previous[0] + _fingerprint(p), deps)
        source = _mapping(p.get("source"))
        for kind in ("editable", "virtual", "workspace", "directory"):
            if isinstance(source.get(kind), str):
                importers[source[kind]] = frozenset((name,))
    return res


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _poetry(data: Any) -> Resolution:
    res = Resolution()
    for p in _mapping(data).get("package", []):
        if isinstance(p, dict):
            deps = tuple(sorted(_norm(d) for d in _mapping(p.get("dependencies"))))
            res.packages[_norm(str(p.get("name")))] = (_fingerprint(p), deps)
    return res


_YARN_V1_ENTRY = re.compile(r'^"?((?:@[^@/"\s]+/)?[^@"\s,]+)@', re.MULTILINE)


def _yarn(text: str) -> Resolution:
    """yarn.lock, classic or berry, by package name (all versions of a name together)."""
    if "__metadata:" in text:
        data = _mapping(load_yaml(text.encode()))
        blocks = {str(k): v for k, v in data.items() if k != "__metadata"}
        entries = [(k, _mapping(v)) for k, v in blocks.items()]
    else:
        entries = _yarn_classic(text)
    merged: dict[str, tuple[list[Any], set[str]]] = {}
    for descriptor, entry in entries:
        match = _YARN_V1_ENTRY.match(descriptor.strip())
        if not match:
            raise ManifestError(f"unexpected yarn.lock entry {descriptor[:80]!r}")
        name = match.group(1)
        fingerprints, deps = merged.setdefault(name, ([], set()))
        fingerprints.append(entry)
        for table in ("dependencies", "optionalDependencies"):
            deps.update(str(d) for d in _mapping(entry.get(table)))
    res = Resolution()
    for name, (fingerprints, deps) in merged.items():
        res.packages[name] = (_fingerprint(fingerprints), tuple(sorted(deps)))
    return res


def _yarn_classic(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The entries of a classic yarn.lock: ``descriptor:`` lines, indented fields, and
    indented ``dependencies:`` blocks."""
    entries: list[tuple[str, dict[str, Any]]] = []
    table: dict[str, Any] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            if not line.endswith(":"):
                raise ManifestError(f"yarn.lock line {number}: expected an entry")
            entry: dict[str, Any] = {}
            entries.append((line[:-1], entry))
            table = entry
            continue
        if not entries:
            raise ManifestError(f"yarn.lock line {number}: field outside an entry")
        key, _, value = line.strip().partition(" ")
        key = key.strip('"')
        if line.startswith("    ") and table is not None and table is not entries[-1][1]:
            table[key.rstrip(":")] = value.strip('"')
        elif key.endswith(":") and not value:
            table = entries[-1][1].setdefault(key[:-1], {})
        else:
            entries[-1][1][key] = value.strip('"')
            table = entries[-1][1]
    return entries


def _go_sum(text: str) -> Resolution:
    res = Resolution()
    lines: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            lines.setdefault(parts[0], []).append(line)
        elif parts:
            raise ManifestError("go.work.sum: a line is not 'module version hash'")
    for module, found in lines.items():
        res.packages[module] = ("\n".join(sorted(found)), ())
    return res


READERS: dict[str, tuple[str, Callable[[bytes], Resolution]]] = {  # name -> (ecosystem, read)
    "package-lock.json": ("node", lambda b: _npm(_json(b))),
    "npm-shrinkwrap.json": ("node", lambda b: _npm(_json(b))),
    "pnpm-lock.yaml": ("node", lambda b: _pnpm(load_yaml(b))),
    "yarn.lock": ("node", lambda b: _yarn(decode_text(b))),
    "Cargo.lock": ("rust", lambda b: _cargo(load_toml(b))),
    "uv.lock": ("python", lambda b: _uv(load_toml(b))),
    "poetry.lock": ("python", lambda b: _poetry(load_toml(b))),
    "go.work.sum": ("go", lambda b: _go_sum(decode_text(b))),
}


def _json(content: bytes) -> Any:
    try:
        return json.loads(decode_text(content))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ManifestError(f"invalid JSON: {exc}") from exc


def read(name: str, content: bytes | None) -> Resolution:
    """The resolution in a lockfile's bytes; ManifestError when it cannot be read."""
    if content is None:
        raise ManifestError(f"larger than {MAX_LOCKFILE_BYTES // (1024 * 1024)} MiB")
    try:
        return READERS[name][1](content)
    except ManifestError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
        raise ManifestError(f"unexpected content: {type(exc).__name__}") from exc


def changed_importers(
    base: Resolution, head: Resolution, direct: dict[str, frozenset[str]]
) -> dict[str, list[str]]:
    """Importer -> the changed packages it reaches (names of the first few), for every
    importer whose resolution differs. ``direct`` gives importers for formats without."""
    missing = ("", ())
    changed = {  # by the entry itself: a dependency's new version is a changed key too
        k for k in base.packages.keys() | head.packages.keys()
        if base.packages.get(k, missing)[0] != head.packages.get(k, missing)[0]
        or not (k in base.packages and k in head.packages)
    }  # fmt: skip
    reaches: dict[str, str] = {}  # package -> a changed package it reaches
    for side in (head, base):  # name what head resolves first
        users: dict[str, list[str]] = {}
        for key, (_, deps) in side.packages.items():
            for dep in deps:
                users.setdefault(dep, []).append(key)
        seen = {key: key for key in sorted(changed)}
        queue = deque(sorted(changed))
        while queue:
            key = queue.popleft()
            for user in users.get(key, ()):
                if user not in seen:
                    seen[user] = seen[key]
                    queue.append(user)
        for key, origin in seen.items():
            reaches.setdefault(key, origin)
    out: dict[str, list[str]] = {}
    own = {**(base.importers or {}), **(head.importers or {})}
    for importer in sorted(own or direct):
        old = ((base.importers if own else direct) or {}).get(importer, frozenset())
        new = ((head.importers if own else direct) or {}).get(importer, frozenset())
        hits = {reaches[k] for k in old | new if k in reaches} | (old ^ new)
        if hits:
            packages = sorted(h for h in hits if not h.startswith("importer:"))
            out[importer] = [_label(h) for h in packages or sorted(hits)]
    return out


def _label(key: str) -> str:
    """A package key as a name a reader knows: ``node_modules/a/node_modules/b`` -> ``b``."""
    key = key.removeprefix("importer:")
    return key.rpartition("node_modules/")[2] or key


_NAME_PREFIX = {"node": "npm:", "python": "py:", "go": "go:"}


def impacted_projects(
    lockfile: str, base: bytes | None, head: bytes | None, projects: list[Project]
) -> dict[str, list[str]]:
    """Project name -> the changed packages it resolves, for the projects ``lockfile``
    serves (its ecosystem, at or below its directory). ManifestError if either version
    cannot be read."""
    ecosystem, _ = READERS[basename(lockfile)]
    lock_dir = parent_dir(lockfile)
    served = [p for p in projects if p.ecosystem == ecosystem and in_dir(p.root, lock_dir)]
    before = read(basename(lockfile), base) if base is not None else Resolution()
    after = read(basename(lockfile), head) if head is not None else Resolution()
    prefix = _NAME_PREFIX.get(ecosystem, "")
    direct = {
        p.name: frozenset(r[len(prefix) :] for r in p.requires if r.startswith(prefix))
        for p in served
    }
    if ecosystem == "python":  # the lock's own normalisation
        direct = {n: frozenset(_norm(d) for d in deps) for n, deps in direct.items()}
    by_importer: dict[str, list[str]] = {}
    for p in served:
        by_importer.setdefault(p.name, []).append(p.name)
        by_importer.setdefault(relative(p.root, lock_dir), []).append(p.name)
        for key in p.provides:
            by_importer.setdefault(key, []).append(p.name)
    out: dict[str, list[str]] = {}
    for importer, names in changed_importers(before, after, direct).items():
        for name in by_importer.get(importer, ()):
            out.setdefault(name, names)
    return out
