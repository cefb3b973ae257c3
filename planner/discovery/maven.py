"""Java with Maven: a ``pom.xml`` listing ``<modules>`` aggregates (global); every other
pom is a module. Edges by artifactId from ``<dependency>``, ``<parent>`` and BOM imports
(``<dependencyManagement>`` entries with ``<scope>import</scope>``). Commands
run through the outermost aggregator so sibling modules are built first (``-am``)."""

from xml.etree.ElementTree import Element

from planner.discovery.common import (
    Sources,
    join,
    new_project,
    parent_dir,
    phases,
    relative,
)
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, load_xml

ECOSYSTEM = "java"
READ_NAMES = ("pom.xml",)
PRESENT_NAMES = ()
IMAGE = "maven:3.9-eclipse-temurin-21"
PARSERS = {"pom.xml": load_xml}


def _text(element: Element | None, tag: str) -> str | None:
    child = element.find(tag) if element is not None else None
    text = child.text.strip() if child is not None and child.text else ""
    return text or None


Pom = tuple[str | None, dict[str, str], list[str]]


def _pom(root: Element, base: str) -> Pom:
    """artifactId, the artifactIds it uses (-> mechanism, "" for a plain dependency), the
    module directories it aggregates."""
    uses: dict[str, str] = {}
    for dep in root.findall("dependencies/dependency"):
        uses.setdefault(_text(dep, "artifactId") or "", "")
    for dep in root.findall("dependencyManagement/dependencies/dependency"):
        if _text(dep, "scope") == "import":
            uses[_text(dep, "artifactId") or ""] = "a BOM import"
    uses[_text(root.find("parent"), "artifactId") or ""] = "<parent>"
    uses.pop("", None)
    modules = [join(base, m.text.strip()) for m in root.findall("modules/module") if m.text]
    return _text(root, "artifactId"), uses, [m for m in modules if m]


def _commands(root: str, top: str | None) -> dict[str, list[str]]:
    if top is None:
        install = "mvn -B install -DskipTests"
    else:
        pom = relative(f"{top}/pom.xml" if top != "." else "pom.xml", root)
        install = f"mvn -B -f {pom} -pl {relative(root, top)} -am install -DskipTests"
    return phases([install], [], ["mvn -B test"], ["mvn -B verify -DskipTests"])


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    parsed: dict[str, Pom | None] = {}
    for path in src.named("pom.xml"):
        try:
            parsed[path] = _pom(src.parse(path), parent_dir(path))
        except ManifestError as exc:
            parsed[path] = None
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
    aggregator_of: dict[str, str] = {}
    for path, pom in parsed.items():
        for module in pom[2] if pom else ():
            aggregator_of.setdefault(module, parent_dir(path))
    for path, pom in parsed.items():
        root = parent_dir(path)
        if pom and pom[2]:
            result.global_paths.add(path)
            continue
        top, seen = None, {root}
        while (up := aggregator_of.get(top or root)) is not None and up not in seen:
            top = up
            seen.add(up)
        artifact, uses, _ = pom or (None, {}, [])
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                path,
                IMAGE,
                _commands(root, top),
                mechanisms={f"maven:{u}": how for u, how in uses.items() if how},
                member=root in aggregator_of,
                provides=[f"maven:{artifact}"] if artifact else [],
                requires=[f"maven:{u}" for u in sorted(uses)],
            )
        )
    return result
