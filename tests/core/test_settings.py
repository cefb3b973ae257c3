"""`prod` refuses insecure defaults, with a clear message, in every process."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DELTACI_", "SECRET_KEY", "DEBUG"))
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_refuses_to_start_prod_with_insecure_defaults(tmp_path):
    proc = manage({"DELTACI_ENV": "prod", "DELTACI_DATA_DIR": str(tmp_path)}, "check")
    assert proc.returncode != 0
    for fragment in ("SECRET_KEY", "GITHUB_WEBHOOK_SECRET", "DELTACI_SECRETS_KEY"):
        assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr


def test_it_refuses_debug_in_prod(tmp_path):
    env = {
        "DELTACI_ENV": "prod",
        "DELTACI_DATA_DIR": str(tmp_path),
        "DEBUG": "true",
        "SECRET_KEY": "k" * 50,
        "GITHUB_WEBHOOK_SECRET": "w" * 20,
        "DELTACI_SECRETS_KEY": "x" * 43 + "=",
        "ALLOWED_HOSTS": "ci.example.com",
    }
    proc = manage(env, "check")
    assert proc.returncode != 0 and "DEBUG is on" in proc.stderr


def test_it_starts_prod_with_safe_settings(tmp_path):
    env = {
        "DELTACI_ENV": "prod",
        "DELTACI_DATA_DIR": str(tmp_path),
        "DEBUG": "false",
        "SECRET_KEY": "k" * 50,
        "GITHUB_WEBHOOK_SECRET": "w" * 20,
        "DELTACI_SECRETS_KEY": "x" * 43 + "=",
        "ALLOWED_HOSTS": "ci.example.com",
    }
    proc = manage(env, "check")
    assert proc.returncode == 0, proc.stderr


def test_it_requires_a_lease_ttl_of_three_heartbeats(tmp_path):
    env = {
        "DELTACI_DATA_DIR": str(tmp_path),
        "DELTACI_LEASE_TTL_SECONDS": "30",
        "DELTACI_HEARTBEAT_INTERVAL_SECONDS": "20",
    }
    proc = manage(env, "check")
    assert proc.returncode != 0 and "deltaci.E001" in proc.stderr
