"""A root ``Makefile`` with ``build``/``test``/``lint`` targets is a project of its own
(ecosystem ``make``). Targets are found by regex; make is never run."""

import re

from planner.discovery.common import Sources, new_project, nothing, phases
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, decode_text

ECOSYSTEM = "make"
ROOT_NAMES = ("GNUmakefile", "makefile", "Makefile")  # make's own lookup order
READ_NAMES = ROOT_NAMES
PRESENT_NAMES = ()
IMAGE = "buildpack-deps:bookworm"
PARSERS = dict.fromkeys(ROOT_NAMES, decode_text)
# A rule is one logical line: its targets up to the first colon, backslash-newline
# continuing it. A line continuing the one before is never a start of its own, and the
# targets never run on across plain newlines: either made every line start rescan the
# lines after it (a 64 KiB Makefile of short lines took 19 s).
_RULE = re.compile(r"^(?<!\\\n)([^\s:#=](?:[^:#=\\\n]|\\\n?)*+)::?(?!=)", re.MULTILINE)


def targets(text: str) -> set[str]:
    found: set[str] = set()
    for match in _RULE.finditer(text):
        found.update(match.group(1).split())
    return found


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    path = next((n for n in ROOT_NAMES if src.has(n)), None)
    if path is None:
        return result
    result.global_paths.add(path)
    try:
        found = targets(src.parse(path))
    except ManifestError as exc:
        result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
        return result
    wanted = {"build", "test", "lint"} & found
    if not wanted:
        return result

    def step(target: str) -> list[str]:
        return [f"make {target}"] if target in found else [nothing(f"no {target} target")]

    steps = phases([], step("build"), step("test"), step("lint"))
    result.projects.append(new_project(src, ECOSYSTEM, path, IMAGE, steps))
    return result
