"""Structured JSON log lines on stderr.

One line per event so operators can grep and ship them. Context (run_id,
job_id, lease hash) is bound once per job; the lease id itself, tokens and
secret values are never passed here — only `lease_ref()` of a lease.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "deltaci_runner"
_RESERVED = {"exc_info", "stack_info", "stacklevel", "extra"}


def lease_ref(lease_id: str) -> str:
    """Short SHA-256 prefix of a lease id: correlates with the control plane, grants nothing."""
    return hashlib.sha256(lease_id.encode()).hexdigest()[:12]


def utcnow(precise: bool = False) -> str:
    """ISO-8601 UTC timestamp with a `Z`, the protocol's time format (milliseconds for logs)."""
    now = datetime.now(UTC)
    if precise:
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": utcnow(precise=True),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "ctx", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """`log.info("msg", key=value)`: keyword arguments become JSON fields."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        fields = {k: kwargs.pop(k) for k in list(kwargs) if k not in _RESERVED}
        kwargs["extra"] = {"ctx": {**(self.extra or {}), **fields}}
        return msg, kwargs

    def bind(self, **ctx: Any) -> ContextLogger:
        return ContextLogger(self.logger, {**(self.extra or {}), **ctx})


def setup(level: int = logging.INFO) -> None:
    """Install the JSON handler once (idempotent, so tests may call main() repeatedly)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.propagate = False
    if not any(getattr(h, "_deltaci", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._deltaci = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def get_logger(**ctx: Any) -> ContextLogger:
    return ContextLogger(logging.getLogger(LOGGER_NAME), ctx)
