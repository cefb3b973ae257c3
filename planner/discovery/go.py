"""Go: every ``go.mod`` is a module; edges from intra-repo ``require``s (by module path)
and ``replace`` directives pointing at local directories. ``go.work`` is global."""

import re

from planner.discovery.common import Sources, join, new_project, parent_dir, phases
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, decode_text

ECOSYSTEM = "go"
READ_NAMES = ("go.mod", "go.work")
PRESENT_NAMES = ("go.sum", "go.work.sum")
DEFAULT_IMAGE = "golang:1.22"
PARSERS = {"go.mod": lambda content: statements(decode_text(content))}
PARSERS["go.work"] = PARSERS["go.mod"]

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


def _local_target(base: str, tokens: list[str]) -> str | None:
    """The directory a ``replace old [v] => new [v]`` points at, if it is local."""
    if "=>" not in tokens:
        return None
    target = tokens[tokens.index("=>") + 1 : tokens.index("=>") + 2]
    if not target or not target[0].startswith(("./", "../")):
        return None
    return join(base, target[0])


def _module(src: Sources, path: str) -> tuple[str, list[str], list[str], str]:
    directives = src.parse(path)
    modules = [t[0] for verb, t in directives if verb == "module"]
    if not modules:
        raise ManifestError("no module directive")
    base = parent_dir(path)
    requires = [f"go:{t[0]}" for verb, t in directives if verb == "require"]
    local = [_local_target(base, t) for verb, t in directives if verb == "replace"]
    versions = [t[0] for verb, t in directives if verb == "go"]
    image = DEFAULT_IMAGE
    if versions and (m := re.match(r"^1\.(\d+)", versions[0])):
        image = f"golang:1.{m.group(1)}"
    return modules[0], requires, [d for d in local if d], image


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    for path in src.named("go.work"):
        result.global_paths.add(path)
        try:
            src.parse(path)
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
    for path in src.named("go.mod"):
        steps = phases([], ["go build ./..."], ["go test ./..."], ["go vet ./..."])
        try:
            module, requires, local, image = _module(src, path)
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
            result.projects.append(new_project(src, ECOSYSTEM, path, DEFAULT_IMAGE, steps))
            continue
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                path,
                image,
                steps,
                provides=[f"go:{module}"],
                requires=requires,
                path_deps=local,
            )
        )
    return result
