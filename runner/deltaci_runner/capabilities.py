"""What this runner can run, advertised at registration and with every lease request."""

from __future__ import annotations

import os
import platform
import shutil

TOOLS = ("python3", "go", "node", "cargo", "java", "mvn", "gradle", "dotnet", "make", "git")
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def arch() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine)


def find_tools(path: str, visible_roots: tuple[str, ...] | None = None) -> list[str]:
    """Toolchains on `path`; with `visible_roots`, only those a sandbox can actually see."""
    found = []
    for tool in TOOLS:
        location = shutil.which(tool, path=path)
        if location is None:
            continue
        real = os.path.realpath(location)
        if visible_roots and not any(real.startswith(root + "/") for root in visible_roots):
            continue
        found.append(tool)
    return found


def detect(
    executor: str,
    labels: list[str],
    path: str,
    visible_roots: tuple[str, ...] | None = None,
) -> list[str]:
    caps = [f"executor:{executor}", "os:linux", f"arch:{arch()}"]
    if executor == "oci":
        caps.append("image:any")  # runs a job in its declared image; the host's tools don't count
    else:
        caps += [f"tool:{tool}" for tool in find_tools(path, visible_roots)]
    caps += [label for label in labels if label not in caps]
    return caps
