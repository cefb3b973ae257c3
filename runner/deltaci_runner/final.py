"""The one final message of a lease: `Complete`, or `CancelAck` when a cancel is pending.

Bodies are encoded once, so a retry after a network error or 5xx repeats
exactly the same message — which the protocol answers idempotently.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from deltaci_runner.client import (
    ClientError,
    ControlPlane,
    ProtocolError,
    StaleLease,
    encode,
    retry_transient,
)
from deltaci_runner.jlog import ContextLogger, utcnow


@dataclass
class Outcome:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | CANCELED | ABANDONED
    exit_code: int | None
    summary: str

    @property
    def wire_exit_code(self) -> int:
        """Always an integer on the wire: 124 (timeout(1)'s) or 1 when no process told us."""
        if self.exit_code is not None:
            return self.exit_code
        return {"SUCCEEDED": 0, "TIMED_OUT": 124}.get(self.status, 1)


class CancelPending(Exception):
    """Complete answered 409 INVALID_STATE: the attempt is being cancelled."""


def send_complete(
    plane: ControlPlane, body: dict[str, Any], *, within: float, log: ContextLogger
) -> str:
    """Deliver Complete; returns SENT, STALE, REFUSED or UNDELIVERED; raises CancelPending."""
    data = encode(body)
    try:
        retry_transient(
            lambda: plane.post_json("/api/v1/internal/complete", data),
            deadline=time.monotonic() + within,
            on_retry=_logging_retry(log),
        )
    except StaleLease as exc:
        log.warning("Complete answered StaleLease", reason=exc.reason)
        return "STALE"
    except ProtocolError as exc:
        if exc.status == 409 and exc.code == "INVALID_STATE":
            raise CancelPending from None
        log.error("Complete refused", error=str(exc))
        return "REFUSED"
    except ClientError as exc:
        log.error("Complete not delivered", error=str(exc))
        return "UNDELIVERED"
    log.info("complete sent", status=body["status"], exit_code=body["exit_code"])
    return "SENT"


def send_cancel_ack(
    plane: ControlPlane,
    *,
    lease_id: str,
    runner_id: str,
    summary: str,
    within: float,
    log: ContextLogger,
) -> bool:
    data = encode(
        {
            "type": "CancelAck",
            "lease_id": lease_id,
            "runner_id": runner_id,
            "final_status": "CANCELED",
            "ts": utcnow(),
            "artifacts": [],
            "summary": summary,
        }
    )
    try:
        retry_transient(
            lambda: plane.post_json("/api/v1/internal/cancel-ack", data),
            deadline=time.monotonic() + within,
            on_retry=_logging_retry(log),
        )
    except ClientError as exc:
        log.warning("CancelAck not accepted", error=str(exc))
        return False
    log.info("cancel acknowledged")
    return True


def _logging_retry(log: ContextLogger):  # type: ignore[no-untyped-def]
    def on_retry(exc: ClientError, delay: float) -> None:
        log.warning("retrying", error=str(exc), delay=round(delay, 2))

    return on_retry
