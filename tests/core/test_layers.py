"""The layers hold: import-linter's contracts (.importlinter) are kept, and lib/ names
no app's table (a table name in lib/ would tie the model-free helpers to one app)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]


def test_it_keeps_every_import_contract():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (requirements-dev.txt)")
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_lib_names_no_app_table():
    tables = {m._meta.db_table for m in apps.get_models() if not m.__module__.startswith("django.")}
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, tables))) + r")\b")
    named = {
        f"{path.relative_to(ROOT)}: {m.group(1)}"
        for path in sorted((ROOT / "lib").rglob("*.py"))
        for m in pattern.finditer(path.read_text())
    }
    assert not named
