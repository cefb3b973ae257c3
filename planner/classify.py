"""Path rules that do not depend on discovery: documentation, files no build reads, and
global files — kept here as data, in one place.

Global files change how everything builds (toolchain pins, CI scripts, ci.ai.yaml, the
root Makefile, root lockfiles); discovery adds the manifests of workspace roots. Files no
build reads (editor settings, funding and ownership files, issue templates) never widen
a plan. A repository adjusts both lists with ``planning.global`` / ``planning.ignore``
globs in ci.ai.yaml; its own globs win over these defaults, ``global`` over ``ignore``.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from planner.discovery.common import basename
from planner.globs import compile_glob

CONFIG_PATH = "ci.ai.yaml"
GLOBAL_ROOT_FILES = frozenset(
    {
        CONFIG_PATH,
        ".tool-versions",
        ".python-version",
        ".nvmrc",
        ".node-version",
        ".ruby-version",
        ".java-version",
        ".sdkmanrc",
        "rust-toolchain",
        "rust-toolchain.toml",
        "go.work",
        "go.work.sum",
        "pnpm-workspace.yaml",
        "Makefile",
        "GNUmakefile",
        "makefile",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        ".npmrc",
        ".yarnrc",
        ".yarnrc.yml",
        "Cargo.lock",
        "uv.lock",
        "poetry.lock",
        "gradle.properties",
        "gradlew",
        "gradlew.bat",
        "global.json",
        "Directory.Build.props",
        "Directory.Build.targets",
        "Directory.Packages.props",
        "NuGet.config",
        "nuget.config",
    }
)
GLOBAL_PREFIXES = (
    ".ci/",
    "ci/",
    ".github/workflows/",
    ".github/actions/",
    "scripts/ci/",
    "gradle/",
)
DOC_SUFFIXES = (".md", ".rst")
NON_BUILD_GLOBS = (
    "**/.vscode/**",
    "**/.idea/**",
    "**/.fleet/**",
    "**/.editorconfig",
    "FUNDING.*",
    ".github/FUNDING.*",
    "CODEOWNERS",
    ".github/CODEOWNERS",
    "docs/CODEOWNERS",
    ".github/ISSUE_TEMPLATE/**",
    ".github/DISCUSSION_TEMPLATE/**",
    ".github/PULL_REQUEST_TEMPLATE/**",
    ".github/PULL_REQUEST_TEMPLATE.*",
    ".github/pull_request_template.*",
    ".github/dependabot.yml",
    ".mailmap",
    ".git-blame-ignore-revs",
)

# How a changed path counts, before project ownership.
GLOBAL, NON_BUILD, DOC = "global", "non_build", "doc"


@dataclass(frozen=True)
class PathRules:
    """A repository's ``planning.ignore`` / ``planning.global`` globs (anchored at the
    repository root) on top of the defaults above."""

    ignore: tuple[str, ...] = ()
    global_: tuple[str, ...] = ()

    def declared(self, path: str) -> str | None:
        """GLOBAL or NON_BUILD when the repository's own globs name ``path``."""
        if self.global_ and _union(self.global_).fullmatch(path):
            return GLOBAL
        if self.ignore and _union(self.ignore).fullmatch(path):
            return NON_BUILD
        return None

    def kind(self, path: str, discovered: frozenset[str]) -> str | None:
        """GLOBAL, NON_BUILD, DOC, or None for a path that impact analysis must place."""
        if declared := self.declared(path):
            return declared
        if is_doc(path):
            return DOC
        if is_global(path, discovered):
            return GLOBAL
        return NON_BUILD if _union(NON_BUILD_GLOBS).fullmatch(path) else None


@lru_cache(maxsize=64)
def _union(globs: tuple[str, ...]) -> re.Pattern[str]:
    """One expression for a list of globs: one match call per path."""
    return re.compile("|".join(f"(?:{compile_glob(g).pattern})" for g in globs), re.DOTALL)


def is_global(path: str, discovered: frozenset[str]) -> bool:
    return path in GLOBAL_ROOT_FILES or path in discovered or path.startswith(GLOBAL_PREFIXES)


def is_doc(path: str) -> bool:
    """``*.md``, ``*.rst``, ``LICENSE*`` anywhere and everything under ``docs/``."""
    name = basename(path).lower()
    return name.endswith(DOC_SUFFIXES) or name.startswith("license") or path.startswith("docs/")
