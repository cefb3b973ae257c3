"""A small but real control plane for runner tests: ThreadingHTTPServer on 127.0.0.1.

It implements the protocol endpoints well enough to hand out leases, keeps
lease state (GRANTED/ACTIVE/COMPLETED/CANCELED) with the protocol's answers,
records every message, and has knobs to inject cancellation, stale leases,
log gaps and transient errors.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REGISTRATION_TOKEN = "reg-" + "r" * 40
RUNNER_TOKEN = "run-" + "t" * 40


@dataclass
class Message:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON for protocol messages, bytes for log chunks and uploads
    raw: bytes = b""
    status: int = 0


@dataclass
class Lease:
    grant: dict[str, Any]
    state: str = "GRANTED"
    cancel_requested: bool = False
    cancel_deadline: float = 5
    complete_body: bytes | None = None


@dataclass
class Knobs:
    """Behaviour switches a test flips before starting the runner."""

    cancel_when_log_contains: bytes | None = None
    cancel_deadline_seconds: float = 6
    stale_on_heartbeat: int | None = None  # answer StaleLease to the Nth heartbeat (1-based)
    stale_when_log_contains: bytes | None = None
    complete_failures: int = 0  # answer 503 to this many Complete calls first
    lose_log_after_first_chunk: bool = False  # forget stored bytes once -> next chunk gets 416
    heartbeat_interval: float = 0.2
    lease_ttl: float = 5
    refuse_protocol_on: str | None = None  # answer 426 UPGRADE_REQUIRED on this path


@dataclass
class FakePlane:
    knobs: Knobs = field(default_factory=Knobs)
    runner_id: str = "runner-1"

    def __post_init__(self) -> None:
        self.messages: list[Message] = []
        self.pending: list[dict[str, Any]] = []
        self.leases: dict[str, Lease] = {}
        self.log = bytearray()
        self.uploads: dict[str, bytes] = {}
        self.upload_specs: dict[str, dict[str, Any]] = {}
        self.heartbeats = 0
        self.lock = threading.RLock()
        self.lost_log = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- test API ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakePlane:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_job(
        self,
        repo: str,
        sha: str,
        steps: list[str],
        *,
        max_runtime: float = 60,
        secrets: dict[str, str] | None = None,
        egress: dict[str, Any] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        lease_id = uuid.uuid4().hex + uuid.uuid4().hex
        grant = {
            "type": "LeaseGranted",
            "run_id": "run-1",
            "job_id": "job-1",
            "attempt_id": "att-1",
            "attempt_number": 1,
            "lease_id": lease_id,
            "lease_ttl_seconds": self.knobs.lease_ttl,
            "heartbeat_interval_seconds": self.knobs.heartbeat_interval,
            "ack_timeout_seconds": 30,
            "max_runtime_seconds": max_runtime,
            "source": {"repo_url": repo, "ref": "refs/heads/main", "commit_sha": sha},
            "job_spec": {
                "name": "unit-tests",
                "workdir": ".",
                "image": "python:3.12",
                "steps": steps,
                "env": {"CI": "true"},
                "artifacts": [],
                "caches": [],
                "limits": {"cpu": "2", "memory": "4Gi"},
                **spec,
            },
            "policy": {"egress": egress or {"mode": "open", "allow": []}},
            "secrets": secrets or {},
        }
        with self.lock:
            self.pending.append(grant)
        return grant

    def of(self, path_suffix: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m.path.endswith(path_suffix)]

    def bodies(self, path_suffix: str) -> list[Any]:
        return [m.body for m in self.of(path_suffix)]

    def wait_for(self, predicate: Any, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    # -- protocol ----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple:
        """Returns (status, json body or None)."""
        if path == self.knobs.refuse_protocol_on:
            return 426, _error("UPGRADE_REQUIRED", "runner protocol 1 is no longer supported")
        if (
            path == "/api/v1/internal/lease"
            and headers.get("authorization") == f"Bearer {RUNNER_TOKEN}"
        ):
            return self._lease(json.loads(raw or b"{}"))  # long-poll: must not hold the lock
        with self.lock:
            return self._handle_locked(method, path, headers, raw)

    def _handle_locked(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple:
        auth = headers.get("authorization", "")
        if path == "/api/v1/runners/register":
            if auth != f"Bearer {REGISTRATION_TOKEN}":
                return 401, _error("UNAUTHORIZED", "bad registration token")
            return 201, {
                "runner_id": self.runner_id,
                "token": RUNNER_TOKEN,
                "lease_ttl_seconds": self.knobs.lease_ttl,
                "heartbeat_interval_seconds": self.knobs.heartbeat_interval,
            }
        if path.startswith("/upload/") and method == "PUT":
            return self._upload(path.rsplit("/", 1)[1], raw)
        if auth != f"Bearer {RUNNER_TOKEN}":
            return 401, _error("UNAUTHORIZED", "bad runner token")
        if path == "/api/v1/internal/log":
            return self._log_chunk(headers, raw)
        body = json.loads(raw or b"{}")
        lease = self.leases.get(str(body.get("lease_id")))
        if lease is None:
            return _stale(body.get("lease_id"), "UNKNOWN_LEASE")
        handler = {
            "/api/v1/internal/ack-lease": self._ack,
            "/api/v1/internal/heartbeat": self._heartbeat,
            "/api/v1/internal/complete": self._complete,
            "/api/v1/internal/cancel-ack": self._cancel_ack,
            "/api/v1/internal/artifacts": self._artifact,
        }[path]
        return handler(lease, body, raw)

    def _lease(self, body: dict[str, Any]) -> tuple:
        deadline = time.monotonic() + min(float(body.get("wait_seconds", 0)), 20)
        while True:
            with self.lock:
                if self.pending:
                    grant = self.pending.pop(0)
                    self.leases[grant["lease_id"]] = Lease(grant)
                    return 200, grant
            if time.monotonic() >= deadline:
                return 204, None
            time.sleep(0.05)

    def _ack(self, lease: Lease, body: dict[str, Any], raw: bytes) -> tuple:
        if lease.state not in ("GRANTED", "ACTIVE"):
            return _stale(lease.grant["lease_id"], "LEASE_ENDED")
        lease.state = "ACTIVE"
        return 200, {"type": "LeaseAcked", "lease_id": lease.grant["lease_id"], "accepted": True}

    def _heartbeat(self, lease: Lease, body: dict[str, Any], raw: bytes) -> tuple:
        lease_id = lease.grant["lease_id"]
        if lease.state not in ("GRANTED", "ACTIVE"):
            return _stale(lease_id, "LEASE_ENDED")
        self.heartbeats += 1
        stale_log = self.knobs.stale_when_log_contains
        if self.knobs.stale_on_heartbeat == self.heartbeats or (
            stale_log and stale_log in self.log
        ):
            lease.state = "REVOKED"
            return _stale(lease_id, "LEASE_REVOKED")
        lease.state = "ACTIVE"
        marker = self.knobs.cancel_when_log_contains
        if marker and marker in self.log:
            lease.cancel_requested = True
        return 200, {
            "type": "HeartbeatAck",
            "lease_id": lease_id,
            "extend_lease": True,
            "new_lease_ttl_seconds": self.knobs.lease_ttl,
            "cancel_requested": lease.cancel_requested,
            "cancel_deadline_seconds": self.knobs.cancel_deadline_seconds
            if lease.cancel_requested
            else 0,
            "cancel_reason": "JOB_CANCELED" if lease.cancel_requested else None,
        }

    def _complete(self, lease: Lease, body: dict[str, Any], raw: bytes) -> tuple:
        lease_id = lease.grant["lease_id"]
        if self.knobs.complete_failures > 0:
            self.knobs.complete_failures -= 1
            return 503, _error("INTERNAL_ERROR", "try again")
        if lease.state == "COMPLETED":
            if raw == lease.complete_body:
                return 200, {"type": "CompleteAck", "lease_id": lease_id, "accepted": True}
            return 409, _error("INVALID_STATE", "a different Complete was accepted")
        if lease.state not in ("GRANTED", "ACTIVE"):
            return _stale(lease_id, "LEASE_ENDED")
        if lease.cancel_requested:
            return 409, _error("INVALID_STATE", "cancellation pending")
        lease.state = "COMPLETED"
        lease.complete_body = raw
        return 200, {"type": "CompleteAck", "lease_id": lease_id, "accepted": True}

    def _cancel_ack(self, lease: Lease, body: dict[str, Any], raw: bytes) -> tuple:
        lease_id = lease.grant["lease_id"]
        if lease.state not in ("GRANTED", "ACTIVE"):
            return _stale(lease_id, "LEASE_ENDED")
        if not lease.cancel_requested:
            return 409, _error("INVALID_STATE", "no cancel pending")
        lease.state = "CANCELED"
        return 200, {"type": "CancelAcknowledged", "lease_id": lease_id, "accepted": True}

    def _artifact(self, lease: Lease, body: dict[str, Any], raw: bytes) -> tuple:
        if lease.state not in ("GRANTED", "ACTIVE"):
            return _stale(lease.grant["lease_id"], "LEASE_ENDED")
        artifact_id = uuid.uuid4().hex[:12]
        self.upload_specs[artifact_id] = body
        return 201, {
            "artifact_id": artifact_id,
            "uri": f"runs/run-1/jobs/job-1/attempts/1/{body['name']}",
            "upload": {
                "method": "PUT",
                "url": f"{self.url}/upload/{artifact_id}",
                "headers": {"X-Upload-Signature": "sig-" + artifact_id},
                "expires_at": "2099-01-01T00:00:00Z",
            },
        }

    def _upload(self, artifact_id: str, raw: bytes) -> tuple:
        spec = self.upload_specs.get(artifact_id)
        if spec is None or hashlib.sha256(raw).hexdigest() != spec["sha256"]:
            return 400, _error("INVALID_REQUEST", "unknown upload or checksum mismatch")
        self.uploads[spec["name"]] = raw
        return 200, {}

    def _log_chunk(self, headers: dict[str, str], raw: bytes) -> tuple:
        lease = self.leases.get(headers.get("x-delta-lease", ""))
        if lease is None or lease.state not in ("GRANTED", "ACTIVE"):
            return _stale("", "UNKNOWN_LEASE" if lease is None else "LEASE_ENDED")
        unit, _, rng = headers.get("content-range", "").partition(" ")
        start_s, _, rest = rng.partition("-")
        end = int(rest.split("/")[0])
        start = int(start_s)
        if unit != "bytes" or end - start + 1 != len(raw):
            return 400, _error("INVALID_REQUEST", "bad Content-Range")
        if start > len(self.log):
            return 416, {"next_offset": len(self.log)}
        if start + len(raw) > len(self.log):
            self.log[start:] = raw
        if self.knobs.lose_log_after_first_chunk and not self.lost_log:
            self.lost_log = True
            next_offset = len(self.log)
            self.log.clear()
            return 200, {"type": "LogAck", "next_offset": next_offset}
        return 200, {"type": "LogAck", "next_offset": len(self.log)}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}


def _stale(lease_id: Any, reason: str) -> tuple:
    return 409, {
        "type": "StaleLease",
        "lease_id": lease_id,
        "reason": reason,
        "error": {"code": "STALE_LEASE", "message": "lease is not live"},
    }


def _make_handler(plane: FakePlane) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path
            try:
                recorded: Any = json.loads(raw) if raw and path != "/api/v1/internal/log" else raw
            except ValueError:
                recorded = raw
            message = Message(self.command, path, headers, recorded, raw)
            with plane.lock:
                plane.messages.append(message)
            status, body = plane.handle(self.command, path, headers, raw)
            message.status = status
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = _serve
        do_PUT = _serve

    return Handler
