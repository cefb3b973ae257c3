"""Go: every ``go.mod`` is a module; edges from intra-repo ``require``s (by module path)
and ``replace`` directives pointing at local directories — a go.mod's own, and a
``go.work``'s, which apply to every module under it that requires the replaced path.
``go.work`` is global; a replace leaving the repository widens the plan."""

import re

from planner.discovery.common import Sources, in_dir, join, new_project, parent_dir, phases
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, decode_text

ECOSYSTEM = "go"
READ_NAMES = ("go.mod", "go.work")
PRESENT_NAMES = ("go.sum", "go.work.sum")
DEFAULT_IMAGE = "golang:1.22"
PARSERS = {"go.mod": lambda content: statements(decode_text(content))}
PARSERS["go.work"] = PARSERS["go.mod"]

_MINOR = re.compile(r"^1\.(\d+)")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\S+')


def statements(text: str) -> list[tuple[str, list[str]]]:
    """(verb, tokens) for each directive, with ``verb ( ... )`` blocks unrolled."""
    out: list[tuple[str, list[str]]] = []
    block: str | None = None
    for raw in text.splitlines():
        tokens = [t.strip('"`') for t in _TOKEN.findall(raw.split("//", 1)[0])]
        if not tokens:
            continue
        if block is not None:
            if tokens == [")"]:
                block = None
            else:
                out.append((block, tokens))
        elif tokens[1:] == ["("]:
            block = tokens[0]
        elif len(tokens) > 1:
            out.append((tokens[0], tokens[1:]))
    return out


def replacements(
    directives: list[tuple[str, list[str]]], path: str, result: EcosystemResult
) -> dict[str, str]:
    """Module path -> local directory for each ``replace old [v] => ./dir``; one that
    leaves the repository is reported as unreadable (the plan widens)."""
    found: dict[str, str] = {}
    for verb, tokens in directives:
        if verb != "replace" or "=>" not in tokens or tokens.index("=>") == 0:
            continue
        target = tokens[tokens.index("=>") + 1 : tokens.index("=>") + 2]
        if not target or not target[0].startswith(("./", "../", "/")):
            continue  # a module path: not local
        directory = join(parent_dir(path), target[0])
        if directory is None:
            message = f"replace {tokens[0]} points outside the repository ({target[0]})"
            result.unreadable.append(Unreadable(path, ECOSYSTEM, message))
        else:
            found[tokens[0]] = directory
    return found


def _module(
    src: Sources, path: str, result: EcosystemResult
) -> tuple[str, list[str], dict[str, str], str]:
    directives = src.parse(path)
    modules = [t[0] for verb, t in directives if verb == "module"]
    if not modules:
        raise ManifestError("no module directive")
    requires = [f"go:{t[0]}" for verb, t in directives if verb == "require"]
    versions = [t[0] for verb, t in directives if verb == "go"]
    image = DEFAULT_IMAGE
    if versions and (m := _MINOR.match(versions[0])):
        image = f"golang:1.{m.group(1)}"
    return modules[0], requires, replacements(directives, path, result), image


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    work: list[tuple[str, dict[str, str]]] = []  # go.work directory -> its replaces
    used: set[str] = set()  # module directories a go.work names with ``use``
    for path in src.named("go.work"):
        result.global_paths.add(path)
        try:
            directives = src.parse(path)
            work.append((parent_dir(path), replacements(directives, path, result)))
            used.update(join(parent_dir(path), t[0]) or "" for v, t in directives if v == "use")
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
    for path in src.named("go.mod"):
        steps = phases([], ["go build ./..."], ["go test ./..."], ["go vet ./..."])
        try:
            module, requires, own, image = _module(src, path, result)
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
            result.projects.append(new_project(src, ECOSYSTEM, path, DEFAULT_IMAGE, steps))
            continue
        mechanisms = {d: "replace in go.work" for w, r in work for d in r.values()}
        local = [
            d
            for w, r in work
            if in_dir(parent_dir(path), w)
            for name, d in r.items()
            if f"go:{name}" in requires
        ]
        mechanisms.update({d: "replace in go.mod" for d in own.values()})
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                path,
                image,
                steps,
                mechanisms=mechanisms,
                member=parent_dir(path) in used,
                provides=[f"go:{module}"],
                requires=requires,
                path_deps=sorted({*local, *own.values()}),
            )
        )
    return result
