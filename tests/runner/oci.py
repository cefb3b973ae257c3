"""Container executor test support: locally built images (no registry is reachable) and
the skip rule. Images are built once per machine and kept in podman's image store."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON_IMAGE = "localhost/deltaci-test-python:1"  # Debian + python3, marker = its tag
PLAIN_IMAGE = "localhost/deltaci-test-plain:1"  # derived: no python3, its own marker


@functools.cache
def oci_problem() -> str | None:
    """Why the container tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (rootful podman)"
    for tool in ("podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    result = subprocess.run(["podman", "info"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"podman does not work here: {result.stderr.strip()[:200]}"
    return None


def needs_oci() -> pytest.MarkDecorator:
    """Skip where podman cannot run containers; never under .ci/run (DELTACI_REQUIRE_OCI=1)."""
    problem = oci_problem()
    required = os.environ.get("DELTACI_REQUIRE_OCI") == "1"
    return pytest.mark.skipif(
        problem is not None and not required, reason=f"containers unusable here: {problem}"
    )


def image_exists(tag: str) -> bool:
    return subprocess.run(["podman", "image", "exists", tag], check=False).returncode == 0


def build_images() -> None:
    """The python image with deploy/debian-image.sh; the plain one derived from it in a
    second (python3 removed, its own marker) rather than a second mmdebstrap."""
    subprocess.run([str(ROOT / "deploy" / "debian-image.sh"), PYTHON_IMAGE, "python3"], check=True)
    if image_exists(PLAIN_IMAGE):
        return
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Containerfile").write_text(
            f"FROM {PYTHON_IMAGE}\n"
            f"RUN rm -f /usr/bin/python3* && echo {PLAIN_IMAGE} > /etc/deltaci-image\n"
        )
        subprocess.run(
            ["podman", "build", "-q", "--network", "none", "-t", PLAIN_IMAGE, context],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def containers_of(runner_id: str) -> list[str]:
    result = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label=io.deltaci.runner={runner_id}", "-q"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()
