"""deploy/build-images.sh, deploy/debian-image.sh and the Dockerfiles they drive: the
logic checked here with a recording stand-in for podman/docker (the real builds run in
deploy/smoke.sh); versions agree everywhere an image is named."""

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from deltaci.version import VERSION
from tests.deploy.test_compose_and_images import stages

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def runner_version() -> str:
    text = (ROOT / "runner" / "deltaci_runner" / "__init__.py").read_text()
    return re.search(r'^__version__ = "(.+)"$', text, re.MULTILINE).group(1)


def test_every_image_reference_carries_the_release_version():
    assert runner_version() == VERSION, "control plane and runner are released together"
    compose = (DEPLOY / "docker-compose.yml").read_text()
    assert f"deltaci/control-plane:{VERSION}}}" in compose
    assert f"deltaci/runner:{VERSION}}}" in compose
    for path in (DEPLOY / "k8s").rglob("kustomization.yaml"):
        for image in yaml.safe_load(path.read_text()).get("images", []):
            assert image["newTag"] == VERSION, path


@pytest.mark.parametrize("name", ["Dockerfile", "runner.Dockerfile"])
def test_images_are_labelled_with_their_version_and_need_no_compiler(name):
    text = (DEPLOY / name).read_text()
    final = stages(DEPLOY / name)[-1]
    assert ("ARG", "VERSION=0.1.0") in final
    labels = " ".join(rest for op, rest in final if op == "LABEL")
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    installs = [
        rest for stage in stages(DEPLOY / name) for op, rest in stage if "pip install" in rest
    ]
    assert installs and all("--only-binary=:all:" in run for run in installs)
    assert all("--mount=type=secret,id=ca_bundle" in run for run in installs), "host CA bundle"
    assert "build-essential" not in text and "apt-get" not in text, "packages via image-packages"


@pytest.fixture
def engine(tmp_path):
    """A stand-in for podman/docker that records its arguments; `image inspect` says the
    image exists (so deploy/debian-image.sh keeps it)."""
    log = tmp_path / "engine.log"
    script = tmp_path / "engine"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexit 0\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_build_images_builds_both_images_with_the_host_network_and_ca_bundle(engine):
    script, log = engine
    out = run("build-images.sh", CONTAINER_ENGINE=str(script), IMAGE_PREFIX="t/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-2:] == [f"t/control-plane:{VERSION}", f"t/runner:{VERSION}"]
    builds = [line for line in log.read_text().splitlines() if line.startswith("build ")]
    assert len(builds) == 2
    for line, file in zip(builds, ("deploy/Dockerfile", "deploy/runner.Dockerfile"), strict=True):
        assert f"-f {file} " in line and "--network host" in line
        assert "--secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt" in line
        assert f"VERSION={VERSION}" in line and "PYTHON_IMAGE" not in line  # official base


def test_build_images_on_a_debian_base_selects_it_by_build_argument(engine):
    script, log = engine
    out = run("build-images.sh", CONTAINER_ENGINE=str(script), DELTACI_BASE="debian")
    assert out.returncode == 0, out.stderr
    lines = log.read_text().splitlines()
    assert "image inspect localhost/deltaci-base/control-plane:bookworm" in lines
    builds = [line for line in lines if line.startswith("build ")]
    assert "PYTHON_IMAGE=localhost/deltaci-base/control-plane:bookworm" in builds[0]
    assert "PYTHON_IMAGE=localhost/deltaci-base/runner:bookworm" in builds[1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DELTACI_BASE": "alpine"}, "must be official or debian"),
        ({"CA_BUNDLE": "/nonexistent/ca.pem"}, "CA bundle"),
    ],
)
def test_build_images_refuses_bad_settings(engine, env, message):
    script, log = engine
    out = run("build-images.sh", CONTAINER_ENGINE=str(script), **env)
    assert out.returncode != 0 and message in out.stderr
    assert not log.exists() or "build " not in log.read_text()


def test_debian_image_keeps_an_existing_image_and_checks_its_arguments(engine, tmp_path):
    script, log = engine
    kept = run("debian-image.sh", "t/base:1", "python3", CONTAINER_ENGINE=str(script))
    assert kept.returncode == 0 and "kept" in kept.stdout
    assert run("debian-image.sh").returncode == 2
    missing = tmp_path / "missing-engine"
    missing.write_text("#!/bin/sh\nexit 1\n")
    missing.chmod(0o755)
    for bad in ("-oAPT::x=y", "pkg;rm", "pkg name", "$(id)"):
        out = run("debian-image.sh", "t/base:1", bad, CONTAINER_ENGINE=str(missing))
        assert out.returncode == 2 and "bad package name" in out.stderr, bad


# --- deploy/smoke.sh -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script", sorted(p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*.sh"))
)
def test_every_shell_script_parses(script):
    assert subprocess.run(["sh", "-n", str(DEPLOY / script)], check=False).returncode == 0


def test_the_smoke_override_swaps_only_what_no_registry_supplies_here():
    """Users keep the official images: the smoke test's override replaces the images of
    PostgreSQL, Redis and the S3 store (and the bucket one-shot), nothing else's."""
    main = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    smoke = yaml.safe_load((DEPLOY / "smoke" / "compose.smoke.yml").read_text())["services"]
    assert set(smoke) <= set(main)
    swapped = {name for name, svc in smoke.items() if "image" in svc}
    assert swapped == {"postgres", "redis", "minio", "create-bucket"}
    for name in ("migrate", "bootstrap", "web", "worker", "beat", "runner"):
        assert "image" not in smoke[name] and "command" not in smoke[name], name
    for name in swapped:
        assert not main[name]["image"].startswith("${"), "the main file names official images"
    assert all(svc["ulimits"]["nofile"]["hard"] < 20000 for svc in smoke.values())
