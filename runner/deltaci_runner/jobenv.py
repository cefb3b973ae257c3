"""What a job's processes see: environment variables and the egress policy.

Order of precedence: base variables < job_spec.env < secrets < CI=true.
Nothing is inherited from the runner's own environment (it holds tokens).
"""

from __future__ import annotations

from typing import Any

from deltaci_runner.jobuser import JobUser
from deltaci_runner.workspace import JobDirs

EGRESS_MODES = ("none", "allowlist", "open")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")


def egress_policy(grant: dict[str, Any]) -> tuple[str, list[str]]:
    """(mode, allowed hosts). A missing or unknown mode is `none`: the safe reading."""
    egress = (grant.get("policy") or {}).get("egress") or {}
    mode = str(egress.get("mode") or "none")
    if mode not in EGRESS_MODES:
        mode = "none"
    return mode, [str(host) for host in egress.get("allow") or []]


def job_env(grant: dict[str, Any], dirs: JobDirs, user: JobUser, path: str) -> dict[str, str]:
    spec = grant.get("job_spec") or {}
    src = grant.get("source") or {}
    env = {
        "PATH": path,  # empty: keep the image's own PATH (container executor)
        "HOME": str(dirs.home),
        "TMPDIR": str(dirs.tmp),
        "LANG": "C.UTF-8",
        "USER": user.name,
        "LOGNAME": user.name,
        "SHELL": "/bin/bash",
        "DELTACI": "true",
        "DELTACI_RUN_ID": str(grant.get("run_id", "")),
        "DELTACI_JOB_ID": str(grant.get("job_id", "")),
        "DELTACI_JOB_NAME": str(spec.get("name", "")),
        "DELTACI_ATTEMPT": str(grant.get("attempt_number", "")),
        "DELTACI_COMMIT_SHA": str(src.get("commit_sha", "")),
        "DELTACI_REF": str(src.get("ref", "")),
        "DELTACI_WORKSPACE": str(dirs.src),
    }
    for name, value in {**(spec.get("env") or {}), **(grant.get("secrets") or {})}.items():
        name, value = str(name), str(value)
        if name and "=" not in name and "\0" not in name and "\0" not in value:
            env[name] = value
    env["CI"] = "true"
    if not env["PATH"]:
        del env["PATH"]
    return env


def proxy_env(port: int) -> dict[str, str]:
    """Point HTTP clients at the in-sandbox forwarder; the job's own loopback stays direct."""
    url = f"http://127.0.0.1:{port}"
    return {
        **dict.fromkeys(PROXY_VARIABLES, url),
        "NO_PROXY": "127.0.0.1,::1",
        "no_proxy": "127.0.0.1,::1",
    }
