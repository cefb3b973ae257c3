""".NET: every ``*.csproj`` / ``*.fsproj`` / ``*.vbproj`` is a project; edges from
``<ProjectReference Include=...>`` in the project and in every ``Directory.Build.props``
/ ``.targets`` above it (MSBuild imports them into each project below), and from
``<PackageReference Include=...>`` naming an in-repo project's package id (central
package management when a ``Directory.Packages.props`` is above). Solutions (``*.sln``)
and MSBuild/SDK files that apply to a whole tree are global."""

import re

from planner.discovery.common import (
    Sources,
    ancestors,
    basename,
    join,
    new_project,
    parent_dir,
    phases,
)
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, decode_text, load_xml

ECOSYSTEM = "dotnet"
DIRECTORY_FILES = ("Directory.Build.props", "Directory.Build.targets")
READ_NAMES = DIRECTORY_FILES
READ_SUFFIXES = (".csproj", ".fsproj", ".vbproj", ".sln")
PRESENT_NAMES = (
    "Directory.Packages.props",
    "global.json",
    "NuGet.config",
    "nuget.config",
)
IMAGE = "mcr.microsoft.com/dotnet/sdk:8.0"
PARSERS = {
    **dict.fromkeys((".csproj", ".fsproj", ".vbproj", *DIRECTORY_FILES), load_xml),
    ".sln": decode_text,
}
_SLN_PROJECT = re.compile(r'^Project\("[^"]*"\)\s*=\s*"[^"]*",\s*"([^"]+)"', re.MULTILINE)


def _references(src: Sources, path: str) -> tuple[list[str], list[str], str | None]:
    """(ProjectReference targets, PackageReference names, PackageId) of one file."""
    root = src.parse(path)
    base = parent_dir(path)
    refs = [el.get("Include") for el in root.iter("ProjectReference")]
    packages = [el.get("Include") or "" for el in root.iter("PackageReference")]
    package_id = next((el.text.strip() for el in root.iter("PackageId") if el.text), None)
    return [j for r in refs if r and (j := join(base, r))], [p for p in packages if p], package_id


def _inherited(src: Sources, path: str, result: EcosystemResult) -> dict[str, str]:
    """ProjectReferences every ``Directory.Build.*`` above ``path`` adds -> mechanism."""
    found: dict[str, str] = {}
    for directory in ancestors(parent_dir(path)):
        for name in DIRECTORY_FILES:
            props = name if directory == "." else f"{directory}/{name}"
            if not src.has(props):
                continue
            try:
                refs = _references(src, props)[0]
            except ManifestError as exc:
                if Unreadable(props, ECOSYSTEM, str(exc)) not in result.unreadable:
                    result.unreadable.append(Unreadable(props, ECOSYSTEM, str(exc)))
                continue
            found.update({r: props for r in refs if r not in found})
    return found


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    result.global_paths.update(src.named(*PRESENT_NAMES, *DIRECTORY_FILES))
    listed: set[str] = set()  # project files a solution names
    for path in src.suffixed(".sln"):
        result.global_paths.add(path)
        try:
            for ref in _SLN_PROJECT.findall(src.parse(path)):
                listed.add(join(parent_dir(path), ref) or "")
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
    for path in src.suffixed(".csproj", ".fsproj", ".vbproj"):
        name = basename(path)
        steps = phases(
            [],
            [f'dotnet build "{name}"'],
            [f'dotnet test "{name}"'],
            [f'dotnet format "{name}" --verify-no-changes'],
        )
        try:
            references, packages, package_id = _references(src, path)
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
            references, packages, package_id = [], [], None
        mechanisms = {r: "ProjectReference" for r in references}
        for target, props in _inherited(src, path, result).items():
            references.append(target)
            mechanisms.setdefault(target, f"a ProjectReference in {props}")
        central = src.nearest(parent_dir(path), ("Directory.Packages.props",))
        how = f"PackageReference (central package management, {central})" if central else ""
        mechanisms.update({f"nuget:{p.lower()}": how or "PackageReference" for p in packages})
        stem = name.rpartition(".")[0]
        result.projects.append(
            new_project(
                src,
                ECOSYSTEM,
                path,
                IMAGE,
                steps,
                mechanisms=mechanisms,
                member=path in listed,
                provides=[f"nuget:{(package_id or stem).lower()}"],
                requires=[f"nuget:{p.lower()}" for p in packages],
                path_deps=references,
            )
        )
    return result
