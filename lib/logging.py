"""One JSON object per log line, carrying the run, job and lease (hash prefix) the
current request or task is about, so operators can follow one job across processes.

Logs leave the trust boundary (log shippers, dashboards), so the formatter is also the
last line of defence for capabilities: token-shaped strings (256-bit urlsafe tokens: lease
ids, runner and registration tokens), bearer credentials, signed upload paths and values
under sensitive keys are replaced by a short hash before a line is written. The hash of a
lease id is the lease prefix the database and the runner log, so lines still correlate.
"""

import contextlib
import contextvars
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "deltaci_log_context", default=None
)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# lib/tokens.new_token() is secrets.token_urlsafe(32): exactly 43 urlsafe characters.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[^\s\"',;]+")
_UPLOAD_PATH = re.compile(r"(/artifacts/upload/)[^\s\"'?/]+")
# Scheme and user name are bounded (as in apps/ai/redact.py): unbounded, they were scanned
# from every word boundary of a long line ("a." * 32768 took 8 s).
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://[^:/@\s\"']{0,256}):[^@/\s\"']+@")
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "clone_token",
        "cookie",
        "lease_id",
        "password",
        "registration_token",
        "secret",
        "secrets",
        "token",
        "x-delta-lease",
        "http_authorization",
        "http_x_delta_lease",
    }
)


def bind(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Add fields (run_id, job_id, lease) to every log line of this request or task."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    return _context.set(merged)


def unbind(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """A fresh context for one request: nothing bound by the previous request on this
    thread leaks into this one, and nothing bound inside leaks out."""
    token = _context.set({k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, Any]:
    return dict(_context.get() or {})


def fingerprint(value: str) -> str:
    """The 12-hex-digit SHA-256 prefix that logs carry instead of a capability."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def redact(text: str) -> str:
    """Replace capabilities in free text by their fingerprint."""
    text = _UPLOAD_PATH.sub(r"\1[redacted]", text)
    text = _URL_PASSWORD.sub(r"\1:[redacted]@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    return _TOKEN.sub(lambda m: f"[redacted:{fingerprint(m.group(0))}]", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "[redacted]" if str(k).lower() in SENSITIVE_KEYS else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    return value


def _gunicorn_access(record: logging.LogRecord) -> dict[str, Any] | None:
    """gunicorn passes the access log's atoms as the record's args: keep the useful ones
    as fields, and never the query string (it may carry a signature)."""
    atoms = record.args
    if record.name != "gunicorn.access" or not isinstance(atoms, dict):
        return None
    return {
        "msg": "request",
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "status": atoms.get("s"),
        "bytes": atoms.get("B"),
        "duration_ms": atoms.get("M"),
        "remote": atoms.get("h"),
        "user_agent": str(atoms.get("a") or "")[:200],
    }


class JsonFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        access = _gunicorn_access(record)
        if access is None:
            data["msg"] = record.getMessage()
        data.update(_context.get() or {})
        if access is not None:
            data.update(access)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        return redact(json.dumps(_scrub(data), default=str))


def install_celery_hooks() -> None:
    """Celery logs through Django's LOGGING (this formatter) instead of its own set-up,
    and every task's lines carry the task name and the run/job/attempt ids it was given."""
    import inspect
    import logging.config

    from celery import signals

    tokens: dict[str, contextvars.Token[dict[str, Any] | None]] = {}

    @signals.setup_logging.connect(weak=False)
    def _configure(**kwargs: Any) -> None:
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)

    @signals.task_prerun.connect(weak=False)
    def _bind(
        task_id: str = "", task: Any = None, args: Any = (), kwargs: Any = None, **_: Any
    ) -> None:
        fields: dict[str, Any] = {"task": getattr(task, "name", None), "task_id": task_id}
        try:
            bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
            named = bound.arguments
        except (TypeError, ValueError, AttributeError):
            named = dict(kwargs or {})
        for key in ("run_id", "job_id", "attempt_id"):
            if isinstance(named.get(key), int | str):
                fields[key] = named[key]
        tokens[task_id] = bind(**fields)

    @signals.task_postrun.connect(weak=False)
    def _unbind(task_id: str = "", **_: Any) -> None:
        token = tokens.pop(task_id, None)
        if token is not None:
            # ValueError: reset from another context (should not happen): drop it
            with contextlib.suppress(ValueError):
                unbind(token)
