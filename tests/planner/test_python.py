"""Python: pyproject (PEP 621, poetry, uv workspaces), setup.cfg, setup.py detection."""

from tests.planner.conftest import codes_of, jobs

UV_ROOT = """
[tool.uv.workspace]
members = ["packages/*"]
exclude = ["packages/legacy"]
"""
CORE = '[project]\nname = "Acme_Core"\nversion = "1"\n'
API = """
[project]
name = "acme-api"
dependencies = ["acme-core>=1", "requests"]

[tool.uv.sources]
acme-core = { workspace = true }

[tool.ruff]
line-length = 100
"""
CLI = """
[tool.poetry]
name = "cli"

[tool.poetry.dependencies]
python = "^3.12"
tooling = { path = "../../tools/tooling" }
"""
SETUP_CFG = "[metadata]\nname = tooling\n\n[options]\ninstall_requires =\n    six\n"


def _repo(repo):
    return repo.commit(
        {
            "pyproject.toml": UV_ROOT,
            "uv.lock": "version = 1\n",
            "packages/core/pyproject.toml": CORE,
            "packages/core/src/core.py": "x = 1\n",
            "packages/api/pyproject.toml": API,
            "packages/api/api.py": "x = 1\n",
            "packages/legacy/setup.py": "raise SystemExit('never run me')\n",
            "packages/legacy/legacy.py": "x = 1\n",
            "apps/cli/pyproject.toml": CLI,
            "apps/cli/cli.py": "x = 1\n",
            "tools/tooling/setup.cfg": SETUP_CFG,
            "tools/tooling/setup.py": "import os; os.system('rm -rf /')\n",
            "tools/tooling/t.py": "x = 1\n",
        }
    )


def test_uv_workspace_members_depend_by_normalized_name(repo):
    base = _repo(repo)
    repo.commit({"packages/core/src/core.py": "x = 2\n"})
    plan = repo.plan(base)
    assert codes_of(plan) == {
        "packages/core": "FILE_CHANGED",
        "packages/api": "DEPENDENCY_CHANGED",
        "packages/legacy": "NOT_AFFECTED",
        "apps/cli": "NOT_AFFECTED",
        "tools/tooling": "NOT_AFFECTED",
    }
    api = jobs(plan)
    assert api["packages/api:test"]["steps"] == ["uv sync --frozen", "uv run pytest -q"]
    assert api["packages/api:build"]["image"].startswith("ghcr.io/astral-sh/uv:")


def test_poetry_path_dependency_and_setup_cfg(repo):
    base = _repo(repo)
    repo.commit({"tools/tooling/t.py": "x = 2\n"})
    plan = repo.plan(base)
    codes = codes_of(plan)
    assert codes["tools/tooling"] == "FILE_CHANGED"
    assert codes["apps/cli"] == "DEPENDENCY_CHANGED"
    assert jobs(plan)["apps/cli:test"]["steps"][-1] == "poetry run pytest -q"
    assert jobs(plan)["tools/tooling:build"]["steps"] == ["python -m pip install -e ."]


def test_setup_py_is_detected_never_run(repo):
    base = _repo(repo)
    repo.commit({"packages/legacy/legacy.py": "x = 2\n"})
    assert codes_of(repo.plan(base))["packages/legacy"] == "FILE_CHANGED"


def test_virtual_uv_root_is_global_not_a_project(repo):
    base = _repo(repo)
    repo.commit({"pyproject.toml": UV_ROOT + "\n# touched\n"})
    plan = repo.plan(base)
    assert "." not in codes_of(plan)
    assert set(codes_of(plan).values()) == {"GLOBAL_FILE_CHANGED"}


def test_tool_only_pyproject_with_requirements(repo):
    repo.commit(
        {
            "pyproject.toml": "[tool.ruff]\nline-length = 100\n",
            "requirements.txt": "django\n",
            "app/x.py": "1",
        }
    )
    steps = jobs(repo.plan(None))
    assert steps[".:build"]["steps"] == ["python -m pip install -r requirements.txt"]
    assert steps[".:lint"]["steps"][-1] == "ruff check ."


def test_uv_sources_overrides_and_poetry_paths_name_their_mechanism(repo):
    base = repo.commit(
        {
            "pyproject.toml": '[tool.uv.workspace]\nmembers = ["pkgs/*"]\n\n'
            "[tool.uv.sources]\nshared = { path = 'libs/shared' }\n\n[tool.uv]\n"
            'override-dependencies = ["attrs @ file:///${PROJECT_ROOT}/vendor/attrs"]\n',
            "uv.lock": "version = 1\n",
            "libs/shared/pyproject.toml": '[project]\nname = "shared"\n',
            "vendor/attrs/pyproject.toml": '[project]\nname = "attrs"\n',
            "pkgs/a/pyproject.toml": '[project]\nname = "a"\ndependencies = ["shared>=1"]\n',
            "pkgs/b/pyproject.toml": '[project]\nname = "b"\ndependencies = ["attrs"]\n',
            "pkgs/c/pyproject.toml": '[project]\nname = "c"\ndependencies = ["a"]\n'
            "[tool.uv.sources]\na = { workspace = true }\n",
            "apps/p/pyproject.toml": '[tool.poetry]\nname = "p"\n[tool.poetry.dependencies]\n'
            'shared = { path = "../../libs/shared", develop = true }\n',
        }
    )
    repo.commit({"libs/shared/s.py": "1", "vendor/attrs/a.py": "1"})
    plan = repo.plan(base)
    reasons = {n: j["reason"] for n, j in jobs(plan).items()}
    assert reasons["pkgs/a:build"].endswith(
        "pkgs/a depends on libs/shared through [tool.uv.sources] of the workspace"
    )
    assert reasons["pkgs/b:build"].endswith(
        "pkgs/b depends on vendor/attrs through [tool.uv] override-dependencies of the workspace"
    )
    assert reasons["pkgs/c:build"].endswith(
        "; pkgs/c on pkgs/a through [tool.uv.sources] workspace)"
    )
    assert reasons["apps/p:build"].endswith("through a poetry path dependency")
