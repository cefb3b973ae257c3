"""gunicorn settings for the control plane's web process (`gunicorn -c deploy/gunicorn.conf.py`).

Every value can be overridden on the command line or through the environment variables
read here. Threads (gthread) because a runner's lease request long-polls for up to 20 s:
with sync workers a few waiting runners would occupy every worker.
"""

import os
from pathlib import Path

# Before any worker imports prometheus-client: each worker then writes its counters and
# histograms to files here and /metrics merges them (apps/ops/metrics.py).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/deltaci-prometheus")  # noqa: S108
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

wsgi_app = "deltaci.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A lease request waits at most 20 s; anything far slower is stuck and is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# The heartbeat file of each worker: /dev/shm exists and is writable with a read-only root.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", "/dev/shm")  # noqa: S108
limit_request_line = 8190
limit_request_fields = 100
# Client addresses from these proxies' X-Forwarded-* headers are trusted (gunicorn also
# reads FORWARDED_ALLOW_IPS itself); /metrics ignores forwarded addresses regardless.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
# lib.logging.JsonFormatter turns the access atoms into fields (no query string).
access_log_format = "%(m)s %(U)s %(s)s"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "lib.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}


def on_starting(server) -> None:
    """Start from an empty metrics directory: files of a previous run's workers would be
    merged into this run's counters."""
    _metrics_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    """A dead worker's live gauges stop counting (its counters stay: they were real)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
