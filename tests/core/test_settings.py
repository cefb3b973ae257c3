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
        "DELTACI_PUBLIC_URL": "https://ci.example.com",
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


SAFE_PROD = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 50,
    "GITHUB_WEBHOOK_SECRET": "w" * 20,
    "DELTACI_SECRETS_KEY": "x" * 43 + "=",
    "ALLOWED_HOSTS": "ci.example.com",
    "DELTACI_PUBLIC_URL": "https://ci.example.com",
}


def test_it_refuses_an_unknown_environment_name_at_settings_load(tmp_path):
    for name in ("production", "PROD", "Prod", ""):
        env = {"DELTACI_ENV": name, "DELTACI_DATA_DIR": str(tmp_path), **SAFE_PROD}
        proc = manage(env, "check")
        assert proc.returncode != 0, name
        assert "DELTACI_ENV must be one of dev, staging, prod" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_it_refuses_plain_http_and_insecure_cookies_in_prod(tmp_path):
    base = {"DELTACI_ENV": "prod", "DELTACI_DATA_DIR": str(tmp_path), **SAFE_PROD}
    proc = manage({**base, "DELTACI_PUBLIC_URL": "http://ci.example.com"}, "check")
    assert proc.returncode != 0 and "DELTACI_PUBLIC_URL must be an https://" in proc.stderr
    proc = manage({**base, "SESSION_COOKIE_SECURE": "false"}, "check")
    assert proc.returncode != 0 and "COOKIE_SECURE must be true" in proc.stderr
    proc = manage({**base, "CSRF_COOKIE_SECURE": "false"}, "check")
    assert proc.returncode != 0 and "COOKIE_SECURE must be true" in proc.stderr


def test_staging_refuses_insecure_settings_but_allows_plain_http(tmp_path):
    proc = manage({"DELTACI_ENV": "staging", "DELTACI_DATA_DIR": str(tmp_path)}, "check")
    assert proc.returncode != 0
    assert "DELTACI_ENV=staging refuses to start" in proc.stderr and "SECRET_KEY" in proc.stderr
    trial = {
        "DELTACI_ENV": "staging",
        "DELTACI_DATA_DIR": str(tmp_path),
        **SAFE_PROD,
        "DELTACI_PUBLIC_URL": "http://ci.example.com",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
    }
    proc = manage(trial, "check")
    assert proc.returncode == 0, proc.stderr
