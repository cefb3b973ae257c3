""".NET: every ``*.csproj`` / ``*.fsproj`` / ``*.vbproj`` is a project; edges from
``<ProjectReference Include=...>``. Solutions (``*.sln``) and MSBuild/SDK files that
apply to a whole tree (``Directory.Build.props``, ``global.json``, ...) are global."""

import re

from planner.discovery.common import (
    Sources,
    basename,
    join,
    new_project,
    parent_dir,
    phases,
)
from planner.discovery.model import EcosystemResult, Unreadable
from planner.manifests import ManifestError, decode_text, load_xml

ECOSYSTEM = "dotnet"
READ_NAMES = ()
READ_SUFFIXES = (".csproj", ".fsproj", ".vbproj", ".sln")
PRESENT_NAMES = (
    "Directory.Build.props",
    "Directory.Build.targets",
    "Directory.Packages.props",
    "global.json",
    "NuGet.config",
    "nuget.config",
)
IMAGE = "mcr.microsoft.com/dotnet/sdk:8.0"
PARSERS = {**dict.fromkeys((".csproj", ".fsproj", ".vbproj"), load_xml), ".sln": decode_text}
_SLN_PROJECT = re.compile(r'^Project\("[^"]*"\)\s*=\s*"[^"]*",\s*"([^"]+)"', re.MULTILINE)


def _references(src: Sources, path: str) -> list[str]:
    root = src.parse(path)
    base = parent_dir(path)
    refs = [el.get("Include") for el in root.iter("ProjectReference")]
    return [j for r in refs if r and (j := join(base, r))]


def discover(src: Sources) -> EcosystemResult:
    result = EcosystemResult()
    result.global_paths.update(src.named(*PRESENT_NAMES))
    for path in src.suffixed(".sln"):
        result.global_paths.add(path)
        try:
            _SLN_PROJECT.findall(src.parse(path))
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
            references = _references(src, path)
        except ManifestError as exc:
            result.unreadable.append(Unreadable(path, ECOSYSTEM, str(exc)))
            references = []
        result.projects.append(
            new_project(src, ECOSYSTEM, path, IMAGE, steps, path_deps=references)
        )
    return result
