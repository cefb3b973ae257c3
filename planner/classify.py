"""Path rules that do not depend on discovery: documentation and global files.

Global files change how everything builds (toolchain pins, CI scripts, ci.ai.yaml, the
root Makefile, root lockfiles); discovery adds the manifests of workspace roots.
"""

from planner.discovery.common import basename

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


def is_global(path: str, discovered: frozenset[str]) -> bool:
    return path in GLOBAL_ROOT_FILES or path in discovered or path.startswith(GLOBAL_PREFIXES)


def is_doc(path: str) -> bool:
    """``*.md``, ``*.rst``, ``LICENSE*`` anywhere and everything under ``docs/``."""
    name = basename(path).lower()
    return name.endswith(DOC_SUFFIXES) or name.startswith("license") or path.startswith("docs/")
