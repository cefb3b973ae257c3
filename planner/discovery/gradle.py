"""Java with Gradle: ``settings.gradle(.kts)`` ``include``s define the projects of a
build (the settings directory then only aggregates: its build files are global); edges
from ``project(':x')`` references in each project's build file, and from composite
builds: every project of a build whose settings ``includeBuild`` a directory depends on
the projects of that included build. Read by regex, never evaluated."""

import re

from planner.discovery.common import (
    Sources,
    ancestors,
    join,
    parent_dir,
    phases,
    relative,
)
from planner.discovery.model import EcosystemResult, Project, Unreadable
from planner.manifests import ManifestError, decode_text

ECOSYSTEM = "java"
SETTINGS = ("settings.gradle", "settings.gradle.kts")
BUILD = ("build.gradle", "build.gradle.kts")
READ_NAMES = SETTINGS + BUILD
PRESENT_NAMES = ("gradlew",)
IMAGE = "gradle:8-jdk21"
PARSERS = dict.fromkeys(READ_NAMES, decode_text)

# Leading blanks stay on the line ([^\S\n], not \s: after ^ that crossed lines and made a
# file of blank lines quadratic, 6 s for 64 KiB).
_INCLUDE = re.compile(r"^[^\S\n]*include\b\s*\(?([^)\n]*)", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"'\n]+)["']""")
_PROJECT_DIR = re.compile(
    r"""project\(\s*["'](:[^"']*)["']\s*\)\s*\.projectDir\s*=\s*(?:file|new\s+File)\("""
    r"""(?:\s*(?:rootDir|settingsDir)\s*,)?\s*["']([^"']+)["']"""
)
# The blanks around the optional "(" are possessive: without one, two \s* split a run of
# blanks every way (26 s for 64 KiB of them).
_INCLUDE_BUILD = re.compile(r"""\bincludeBuild\s*+\(?\s*+["']([^"'\n]+)["']""")
_PROJECT_REF = re.compile(r"""project\(\s*(?:path\s*[:=]\s*)?["'](:[^"']*)["']""")


def _settings(text: str, base: str) -> dict[str, str]:
    """Gradle project path -> directory, for one build."""
    projects: dict[str, str] = {}
    for match in _INCLUDE.finditer(text):
        for name in _QUOTED.findall(match.group(1)):
            gradle_path = ":" + name.lstrip(":")
            directory = join(base, gradle_path[1:].replace(":", "/"))
            if directory:
                projects[gradle_path] = directory
    for gradle_path, directory in _PROJECT_DIR.findall(text):
        if gradle_path in projects and (resolved := join(base, directory)):
            projects[gradle_path] = resolved
    return projects


def _steps(src: Sources, root: str, build_root: str) -> dict[str, list[str]]:
    wrapper = "gradlew" if build_root == "." else f"{build_root}/gradlew"
    gradle = relative(wrapper, root) if src.has(wrapper) else "gradle"
    if gradle == "gradlew":
        gradle = "./gradlew"
    return phases([], [f"{gradle} assemble"], [f"{gradle} test"], [f"{gradle} check -x test"])


def _text(src: Sources, path: str, result: EcosystemResult) -> str | None:
    try:
        return str(src.parse(path))
    except ManifestError as exc:
        result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
        return None


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    builds: dict[str, dict[str, str]] = {}  # settings dir -> {gradle path: dir}
    included: dict[str, list[str]] = {}  # settings dir -> directories of included builds
    for path in src.named(*SETTINGS):
        result.global_paths.add(path)
        text = _text(src, path, result)
        builds[parent_dir(path)] = _settings(text, parent_dir(path)) if text else {}
        targets = [join(parent_dir(path), d) for d in _INCLUDE_BUILD.findall(text or "")]
        included[parent_dir(path)] = [d for d in targets if d]
    owner: dict[str, tuple[str, str]] = {}  # project dir -> (build root, gradle path)
    for build_root, projects in sorted(builds.items()):
        for gradle_path, directory in projects.items():
            owner.setdefault(directory, (build_root, gradle_path))
    build_files = {parent_dir(p): p for p in src.named(*BUILD)}
    roots = set(owner) | set(build_files)
    for root in sorted(roots):
        manifest = build_files.get(root)
        if root in builds and builds[root]:
            if manifest:
                result.global_paths.add(manifest)  # an aggregating root build
            continue
        build_root = (
            owner[root][0]
            if root in owner
            else next((d for d in ancestors(root) if d in builds), root)
        )
        path_deps: list[str] = []
        mechanisms: dict[str, str] = {}
        if manifest and (text := _text(src, manifest, result)) is not None:
            for ref in _PROJECT_REF.findall(text):
                target = builds.get(build_root, {}).get(ref) or join(
                    build_root, ref[1:].replace(":", "/")
                )
                path_deps.append(target or "")
                mechanisms.setdefault(target or "", f"project('{ref}')")
        for directory in included.get(build_root, ()):
            # the included build's projects, or its root for a single-project build
            for other in sorted(builds.get(directory, {}).values()) or [directory]:
                if other in roots and other != root:
                    path_deps.append(other)
                    mechanisms[other] = f"includeBuild('{relative(directory, build_root)}')"
        result.projects.append(
            Project(
                root=root,
                ecosystem=ECOSYSTEM,
                manifest=manifest or _settings_file(src, build_root),
                image=IMAGE,
                steps=_steps(src, root, build_root),
                path_deps=sorted({d for d in path_deps if d and d != root}),
                mechanisms=mechanisms,
                member=root in owner,
            )
        )
    return result


def _settings_file(src: Sources, build_root: str) -> str:
    for name in SETTINGS:
        path = name if build_root == "." else f"{build_root}/{name}"
        if src.has(path):
            return path
    return build_root
