"""A thin test client for the runner protocol, and a snapshot of every state row so a
test can assert that a refused message changed nothing."""

from apps.audit.models import AuditEvent
from apps.runners.models import Lease
from apps.runs.models import Job, JobAttempt, Run, StateEvent

BASE = "/api/v1/internal/"


class Proto:
    """Protocol calls as `runner` (a conftest runner with an authenticated `.client`)."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.c = runner.client

    def post(self, path: str, body, **headers):
        return self.c.post(BASE + path, body, format="json", **headers)

    def lease(self, **extra):
        return self.post("lease", {"type": "LeaseRequest", "wait_seconds": 0, **extra})

    def take(self, **extra) -> dict:
        r = self.lease(**extra)
        assert r.status_code == 200, (r.status_code, r.content)
        return r.json()

    def ack(self, lid: str, **extra):
        return self.post("ack-lease", {"type": "AckLease", "lease_id": lid, **extra})

    def heartbeat(self, lid: str, **extra):
        return self.post("heartbeat", {"type": "Heartbeat", "lease_id": lid, **extra})

    def complete(self, lid: str, status: str = "SUCCEEDED", exit_code: int | None = 0, **extra):
        body = {"type": "Complete", "lease_id": lid, "status": status, "exit_code": exit_code}
        return self.post("complete", {**body, **extra})

    def cancel_ack(self, lid: str, **extra):
        body = {"type": "CancelAck", "lease_id": lid, "final_status": "CANCELED"}
        return self.post("cancel-ack", {**body, **extra})

    def log(self, lid: str, start: int, data: bytes, content_range: str | None = None):
        rng = f"bytes {start}-{start + len(data) - 1}/*" if content_range is None else content_range
        return self.c.generic(
            "POST",
            BASE + "log",
            data,
            content_type="application/octet-stream",
            HTTP_X_DELTA_LEASE=lid,
            HTTP_CONTENT_RANGE=rng,
        )

    def artifact(self, lid: str, name: str, size: int, **extra):
        body = {
            "type": "ArtifactUploadRequest",
            "lease_id": lid,
            "name": name,
            "artifact_type": "file",
            "size": size,
        }
        return self.post("artifacts", {**body, **extra})

    def start(self, **extra) -> dict:
        """Lease, ack and heartbeat once: the attempt is RUNNING."""
        g = self.take(**extra)
        assert self.ack(g["lease_id"]).status_code == 200
        assert self.heartbeat(g["lease_id"]).status_code == 200
        return g


def snapshot() -> dict:
    """Every state column and every append-only row count."""
    return {
        "runs": sorted(Run.objects.values_list("pk", "state")),
        "jobs": sorted(Job.objects.values_list("pk", "state")),
        "attempts": sorted(JobAttempt.objects.values_list("pk", "state", "progress")),
        "leases": sorted(Lease.objects.values_list("pk", "state", "expires_at", "complete_digest")),
        "events": StateEvent.objects.count(),
    }


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def stale_body(lid: str, reason: str) -> dict:
    """The contract's StaleLease body (message text aside)."""
    return {
        "type": "StaleLease",
        "lease_id": lid,
        "reason": reason,
        "error": {"code": "STALE_LEASE", "message": f"lease is stale: {reason}", "details": {}},
    }
