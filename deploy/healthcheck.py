"""The control plane image's HEALTHCHECK: what "healthy" means depends on the role the
entrypoint started (written to /tmp/deltaci-role), since web, worker and beat share one
image. Exit 0 healthy, 1 not. Standard library only, except the worker's ping."""

import os
import sys
import time
import urllib.request
from pathlib import Path

ROLE_FILE = Path("/tmp/deltaci-role")  # noqa: S108 - written by deploy/entrypoint.sh
BEAT_STALE_SECONDS = 600  # beat syncs its schedule file every 3 minutes


def web() -> bool:
    port = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").rsplit(":", 1)[-1]
    url = f"http://127.0.0.1:{port}/healthz"
    req = urllib.request.Request(url, headers={"Host": "localhost"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback only
        return resp.status == 200


def worker() -> bool:
    import socket

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deltaci.settings")
    sys.path.insert(0, "/app")
    from deltaci.celery import app

    replies = app.control.ping(destination=[f"celery@{socket.gethostname()}"], timeout=5)
    return bool(replies)


def beat() -> bool:
    data = Path(os.environ.get("DELTACI_DATA_DIR", "/data"))
    files = list(data.glob("celerybeat-schedule*"))
    return bool(files) and time.time() - max(f.stat().st_mtime for f in files) < BEAT_STALE_SECONDS


def main() -> int:
    role = ROLE_FILE.read_text().strip() if ROLE_FILE.exists() else "web"
    check = {"web": web, "worker": worker, "beat": beat}.get(role)
    if check is None:
        return 0  # one-shot roles (migrate, bootstrap, manage) have nothing to probe
    try:
        return 0 if check() else 1
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy"
        print(f"{role} unhealthy: {type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
