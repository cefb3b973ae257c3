"""deploy/docker-compose.yml, the two Dockerfiles and the env documentation, checked
statically (no Docker engine here): parsed, and held to what the design asks."""

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
LONG_RUNNING = {"postgres", "redis", "minio", "web", "worker", "beat", "runner"}
ONE_SHOTS = {"create-bucket", "migrate", "bootstrap"}
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|KEY_ID")
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]*:[^/@\s]+@")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_a_health_check(compose):
    services = compose["services"]
    assert set(services) == LONG_RUNNING | ONE_SHOTS
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check["test"] and not check.get("disable"), name
    dependents = [
        dep
        for svc in services.values()
        for dep, cond in (svc.get("depends_on") or {}).items()
        if cond["condition"] == "service_completed_successfully"
    ]
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no" and name in dependents, name


def test_compose_services_start_in_order(compose):
    s = compose["services"]
    assert s["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert s["migrate"]["command"] == ["migrate"]
    assert s["bootstrap"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert s["bootstrap"]["command"] == ["bootstrap"]
    assert "manage.py migrate" not in (DEPLOY / "bootstrap.sh").read_text(), "one place migrates"
    for name in ("web", "worker", "beat"):
        for first in ("migrate", "bootstrap"):
            assert s[name]["depends_on"][first]["condition"] == "service_completed_successfully"
        assert s[name]["command"] == [name]
        assert s[name]["image"] == s["bootstrap"]["image"], "one image, three commands"
    assert s["runner"]["depends_on"]["web"]["condition"] == "service_healthy"


def _values(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _values(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _values(v, f"{path}[{i}]")
    else:
        yield path, node


def test_compose_holds_no_secret_literal(compose):
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        assert isinstance(env, dict), name
        for key, value in env.items():
            if key.endswith("_FILE") or value in ("", None):
                continue
            if SECRETISH.search(key):
                assert str(value).startswith("${"), f"{name}.{key} must come from the env file"
            for userinfo in CREDENTIALS_IN_URL.findall(str(value)):
                assert "${" in userinfo, f"{name}.{key}: credentials in a URL literal"
        env_file = svc.get("env_file")
        assert env_file in (None, ".env"), name
    text = (DEPLOY / "docker-compose.yml").read_text()
    for literal in ("change-me", "changeme", "hunter2", "minioadmin", "password123"):
        assert literal not in text.lower()
    # Required secrets refuse to start when unset rather than default to something.
    for var in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_PASSWORD"):
        assert "${" + var + ":?" in text, var


def test_compose_keeps_the_runner_away_from_the_database_and_redis(compose):
    s = compose["services"]
    assert s["runner"]["networks"] == ["runners"]
    for name in ("postgres", "redis"):
        assert "runners" not in s[name]["networks"]
    assert "runners" in s["web"]["networks"] and "runners" in s["minio"]["networks"]
    runner = s["runner"]
    assert runner["cap_drop"] == ["ALL"] and runner["read_only"] is True
    assert "no-new-privileges:true" in runner["security_opt"]
    for name in ("web", "worker", "beat"):
        assert s[name]["read_only"] is True and s[name]["cap_drop"] == ["ALL"]


def test_compose_images_are_pinned(compose):
    for name, svc in compose["services"].items():
        image = svc["image"]
        if image.startswith("${"):
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image} is not pinned"


# --- Dockerfiles -------------------------------------------------------------------------


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    """Instructions per build stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    args, out = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG" and not out:
            name, _, default = rest.partition("=")
            args[name] = default
            continue
        if op == "FROM":
            rest = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest)
            out.append([])
        out[-1].append((op, rest.strip()))
    return out


@pytest.mark.parametrize("name", ["Dockerfile", "runner.Dockerfile"])
def test_images_are_pinned_multi_stage_non_root_without_compilers(name):
    built = stages(DEPLOY / name)
    assert len(built) >= 2, "multi-stage"
    for stage in built:
        base = stage[0][1].split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    final = built[-1]
    text = " ".join(rest for _, rest in final)
    for compiler in ("build-essential", "gcc", "g++", "clang", "make ", "-dev "):
        assert compiler not in text, f"{name}: {compiler} in the final stage"
    users = [rest for op, rest in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "non-root"
    assert any(op == "HEALTHCHECK" for op, _ in final)
    assert any(op == "ENTRYPOINT" for op, _ in final)


def test_control_plane_image_collects_static_files_and_runs_gunicorn():
    build, final = stages(DEPLOY / "Dockerfile")[0], stages(DEPLOY / "Dockerfile")[-1]
    runs = " ".join(rest for op, rest in build if op == "RUN")
    assert "collectstatic --noinput" in runs and "DELTACI_ENV=dev" in runs
    assert "-r /src/requirements.txt" in runs, "the image installs the runtime pins"
    assert "requirements-dev" not in runs, "never the tests and tooling"
    runtime = (ROOT / "requirements.txt").read_text()
    for needed in ("Django==", "gunicorn==", "whitenoise==", "prometheus-client==", "celery=="):
        assert needed in runtime
    for tool in ("kubernetes-validate", "pytest", "ruff", "mypy", "import-linter"):
        assert tool not in runtime
    entry = (DEPLOY / "entrypoint.sh").read_text()
    assert "gunicorn -c /app/deploy/gunicorn.conf.py" in entry
    for role in ("web)", "worker)", "beat)", "migrate)", "bootstrap)"):
        assert role in entry
    assert dict(final)["CMD"] == '["web"]'


def test_runner_image_has_bubblewrap_and_git():
    final = stages(DEPLOY / "runner.Dockerfile")[-1]
    installs = " ".join(rest for op, rest in final if op == "RUN")
    assert "bubblewrap" in installs and "git" in installs
    assert "deltaci-runner" in (DEPLOY / "runner-entrypoint.sh").read_text()


def test_gunicorn_config_uses_threads_json_logs_and_multiprocess_metrics():
    source = (DEPLOY / "gunicorn.conf.py").read_text()
    tree = ast.parse(source)
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert {"worker_class", "threads", "logconfig_dict", "timeout", "bind"} <= names
    assert {"on_starting", "child_exit"} <= {
        n.name for n in tree.body if isinstance(n, ast.FunctionDef)
    }
    # The multiprocess directory is chosen before anything imports prometheus_client.
    assert source.index("PROMETHEUS_MULTIPROC_DIR") < source.index("prometheus_client")
    assert "lib.logging.JsonFormatter" in source


# --- configuration documentation -----------------------------------------------------------


def settings_env_vars() -> set[str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("envdoc", DEPLOY / "envdoc.py")
    envdoc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(envdoc)
    return {name for name, _, _ in envdoc.env_vars()}, envdoc


def test_every_setting_is_documented_in_the_env_file_and_the_readme():
    names, envdoc = settings_env_vars()
    assert {"SECRET_KEY", "DATABASE_URL", "DELTACI_METRICS_ALLOWED_NETWORKS"} <= names
    example = (DEPLOY / ".env.example").read_text()
    readme = (DEPLOY / "README.md").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert names <= documented, f"missing in .env.example: {sorted(names - documented)}"
    missing = {n for n in names if f"`{n}`" not in readme}
    assert not missing, f"missing in deploy/README.md: {sorted(missing)}"
    assert envdoc.table() in readme, "run: python deploy/envdoc.py --write"


def test_the_env_file_documents_every_variable_compose_reads(compose):
    text = (DEPLOY / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert used <= documented, sorted(used - documented)


def test_env_docs_table_reads_defaults_from_the_source():
    _, envdoc = settings_env_vars()
    rows = envdoc.env_vars(
        'X = env.int("DELTACI_FOO", default=3)\nY = env("Z")\nW = os.environ["Q"]'
    )
    assert rows == [("DELTACI_FOO", "int", "3")]
