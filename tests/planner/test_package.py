"""The planner is its own package: importable without Django, typed, installable."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_it_imports_without_django_or_the_server():
    code = (
        "import sys, planner, planner.plan, planner.lockfiles, planner.gitcmd\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "bad = top & {'django', 'apps', 'lib', 'deltaci'}\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_it_ships_as_deltaci_planner_with_its_types():
    pyproject = (ROOT / "planner" / "pyproject.toml").read_text()
    assert 'name = "deltaci-planner"' in pyproject
    assert (ROOT / "planner" / "py.typed").exists()


def test_the_server_and_runner_keep_their_sides():
    runner = "\n".join(p.read_text() for p in (ROOT / "runner").rglob("*.py"))
    assert "import planner" not in runner and "from planner" not in runner
    planner = "\n".join(p.read_text() for p in (ROOT / "planner").rglob("*.py"))
    assert "from apps" not in planner and "from lib" not in planner
    assert "import django" not in planner and "from django" not in planner
