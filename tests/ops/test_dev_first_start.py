"""dev.py's first start: the work directory the job user can reach (or the exact fix),
an admin password that no command line can misread, the run's progress line and pip's
progress lines."""

import importlib.util
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests.conftest import job_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def open_tmp():
    """A temporary directory every user can enter (pytest's own base is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="deltaci-dev-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dev(monkeypatch):
    spec = importlib.util.spec_from_file_location("deltaci_dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "deltaci_dev", module)
    spec.loader.exec_module(module)
    monkeypatch.delenv("DELTACI_WORK_DIR", raising=False)
    return module


@pytest.fixture
def home(open_tmp, dev, monkeypatch):
    """A checkout inside a 0700 home directory, as root's usually is."""
    home = open_tmp / "home"
    checkout = home / "src" / "deltaci"
    checkout.mkdir(parents=True)
    home.chmod(0o700)
    monkeypatch.setattr(dev, "ROOT", checkout)
    monkeypatch.setattr(dev, "DATA", checkout / "var")
    shared = open_tmp / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setattr(dev, "SHARED_TMP", shared)
    return home


def test_a_reachable_checkout_keeps_its_work_dir(dev, open_tmp, monkeypatch):
    monkeypatch.setattr(dev, "DATA", open_tmp / "open" / "var")
    assert dev.work_dir(euid=0) == open_tmp / "open" / "var" / "work"


def test_as_another_user_the_work_dir_stays_in_the_checkout(dev, home):
    assert dev.work_dir(euid=1000) == dev.DATA / "work"


@pytest.mark.skipif(sys.platform != "linux", reason="Linux permissions")
def test_as_root_in_a_0700_home_jobs_work_where_everyone_can_enter(dev, home):
    assert dev.others_can_enter(dev.DATA / "work") == home
    chosen = dev.work_dir(euid=0)
    assert chosen.parent.parent == dev.SHARED_TMP and chosen.name == "work"
    assert stat.S_IMODE(chosen.parent.stat().st_mode) == 0o711
    assert dev.others_can_enter(chosen) is None
    assert dev.work_dir(euid=0) == chosen  # stable across starts


def test_a_foreign_directory_in_its_place_is_refused(dev, home):
    dev.SHARED_TMP.chmod(0o755)
    chosen = dev.work_dir(euid=0)
    chosen.parent.rmdir()
    chosen.parent.symlink_to(home)
    with pytest.raises(SystemExit, match="not a directory of ours"):
        dev.work_dir(euid=0)


def test_without_a_reachable_place_it_says_the_one_line_fix(dev, home):
    dev.SHARED_TMP.chmod(0o700)
    with pytest.raises(SystemExit) as exc:
        dev.work_dir(euid=0)
    message = str(exc.value)
    assert f"chmod o+x {home}" in message and "DELTACI_WORK_DIR" in message
    assert "\n" not in message


def test_an_explicit_work_dir_wins(dev, home, monkeypatch):
    monkeypatch.setenv("DELTACI_WORK_DIR", "/srv/jobs")
    assert dev.work_dir(euid=0) == Path("/srv/jobs")


@pytest.mark.parametrize("password", ["-rf", "--help", "-", "a b;$(x)", "x" * 60])
def test_any_generated_password_reaches_ensure_admin(db, monkeypatch, password):
    monkeypatch.setenv("DELTACI_ADMIN_PASSWORD", password)
    call_command("ensure_admin", "--username", "admin")
    assert User.objects.get(username="admin").check_password(password)
    call_command("ensure_admin", "--username", "root2", f"--password={password}")
    assert User.objects.get(username="root2").check_password(password)


def test_ensure_admin_needs_a_password(db, monkeypatch):
    monkeypatch.delenv("DELTACI_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="DELTACI_ADMIN_PASSWORD"):
        call_command("ensure_admin")


def test_it_reports_its_runs_progress(dev, transactional_db, make_run, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("dev.py reads the embedded SQLite database")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    db = Path(connection.settings_dict["NAME"])
    run = make_run([job_spec("a"), job_spec("b", needs=["a"])])
    assert dev.run_progress(db, str(run.pk)) == "queued, 0 of 2 jobs done"
    run.jobs.filter(name="a").update(state="FAILED")
    assert dev.run_progress(db, str(run.pk)) == "queued, 1 of 2 jobs done, 1 failed"
    type(run).objects.filter(pk=run.pk).update(state="FAILED", reason="required job(s) failed: a")
    assert dev.run_progress(db, str(run.pk)) == "finished: FAILED (required job(s) failed: a)"
    assert dev.run_progress(db, "999") == "" and dev.run_progress(db, "x") == ""
    assert dev.run_progress(db.with_name("missing.sqlite3"), "1") == ""


def test_pip_output_becomes_progress_lines(dev):
    assert dev.pip_progress("Collecting Django==5.2.19 (from -r r.txt (line 2))\n") == (
        "collecting Django==5.2.19"
    )
    assert dev.pip_progress("Processing /opt/idx/six-1.17.0-py2.py3-none-any.whl\n") == (
        "collecting six-1.17.0-py2.py3-none-any.whl"
    )
    assert dev.pip_progress("  Downloading x.whl (8.0 MB)\n") == ""
    assert dev.pip_progress("Installing collected packages: a, b\n").startswith("installing")
