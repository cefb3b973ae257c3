"""The runner protocol (shared/spec/protocol.md): parse, authorize, call the lease
service, answer. No state logic here."""

import logging
import re
import time

from django.conf import settings
from django.db import close_old_connections
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.artifacts import logs, storage
from apps.artifacts.models import Artifact
from apps.policies.effective import policy_for
from apps.runners import leasing, wakeup
from apps.runners.actions import RegistrationRefused, do_register_runner
from apps.runners.api import serializers as s
from apps.runners.api.auth import RunnerTokenAuthentication
from apps.runs.choices import ATTEMPT_LEASED
from lib.api_errors import ApiError
from lib.logging import bind, unbind
from lib.tokens import bearer_token

log = logging.getLogger(__name__)
_RANGE = re.compile(r"^bytes (\d{1,15})-(\d{1,15})/(\*|\d{1,15})$")


class IsRunner(BasePermission):
    def has_permission(self, request, view) -> bool:
        runner = request.user
        if not getattr(runner, "pk", None) or not hasattr(runner, "capabilities"):
            return False
        if not runner.enabled:
            raise ApiError("FORBIDDEN", "runner is disabled")
        return True


def _check_size(request, limit: int) -> None:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError("INVALID_REQUEST", "bad Content-Length") from None
    if declared > limit or len(request.body) > limit:
        raise ApiError("PAYLOAD_TOO_LARGE", f"body exceeds {limit} bytes", {"limit": limit})


def _stale(lease_id: str, reason: str) -> ApiError:
    return ApiError(
        "STALE_LEASE",
        f"lease is stale: {reason}",
        extra={"type": "StaleLease", "lease_id": lease_id, "reason": reason},
    )


class RunnerView(APIView):
    authentication_classes = [RunnerTokenAuthentication]
    permission_classes = [IsRunner]
    parser_classes = [JSONParser]
    serializer_class: type[s.serializers.Serializer] | None = None
    body_limit_setting = "DELTACI_MAX_BODY_BYTES"

    def initial(self, request, *args, **kwargs):
        _check_size(request, getattr(settings, self.body_limit_setting))
        super().initial(request, *args, **kwargs)

    def message(self, request) -> dict:
        if not isinstance(request.data, dict):
            raise ApiError("INVALID_REQUEST", "body must be a JSON object")
        ser = self.serializer_class(data=request.data)
        ser.is_valid(raise_exception=True)
        return ser.validated_data

    def handle_exception(self, exc):
        lease_id = getattr(self, "_lease_id", "")
        if isinstance(exc, leasing.StaleLease):
            exc = _stale(lease_id, exc.reason)
        elif isinstance(exc, leasing.InvalidState):
            exc = ApiError("INVALID_STATE", str(exc))
        return super().handle_exception(exc)

    def lease_call(self, request, fn, *args):
        data = self.message(request)
        self._lease_id = data["lease_id"]
        token = bind(lease=leasing.lease_digest(data["lease_id"])[:12])
        try:
            return data, fn(request.user, data["lease_id"], *args, data)
        finally:
            unbind(token)


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [JSONParser]

    def post(self, request):
        _check_size(request, settings.DELTACI_MAX_BODY_BYTES)
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            raise ApiError("UNAUTHORIZED", "missing registration token")
        if not isinstance(request.data, dict):
            raise ApiError("INVALID_REQUEST", "body must be a JSON object")
        ser = s.RegisterSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            runner, runner_token = do_register_runner(token, **ser.validated_data)
        except RegistrationRefused as exc:
            raise ApiError("UNAUTHORIZED", str(exc)) from None
        return Response(
            {
                "runner_id": str(runner.pk),
                "token": runner_token,
                "lease_ttl_seconds": settings.DELTACI_LEASE_TTL_SECONDS,
                "heartbeat_interval_seconds": settings.DELTACI_HEARTBEAT_INTERVAL_SECONDS,
            },
            status=status.HTTP_201_CREATED,
        )


class LeaseView(RunnerView):
    serializer_class = s.LeaseRequestSerializer

    def post(self, request):
        data = self.message(request)
        runner = request.user
        if runner.draining:
            raise ApiError("FORBIDDEN", "runner is draining")
        wait = min(data.get("wait_seconds", 0), settings.DELTACI_MAX_WAIT_SECONDS)
        deadline = time.monotonic() + wait
        while True:
            granted = leasing.claim(runner)
            if granted:
                return Response(granted.body)
            if time.monotonic() >= deadline:
                return Response(status=status.HTTP_204_NO_CONTENT)
            close_old_connections()
            wakeup.wait(deadline)


class AckView(RunnerView):
    serializer_class = s.AckSerializer

    def post(self, request):
        data, _ = self.lease_call(request, lambda r, lid, d: leasing.ack(r, lid))
        return Response({"type": "LeaseAcked", "lease_id": data["lease_id"], "accepted": True})


class HeartbeatView(RunnerView):
    serializer_class = s.HeartbeatSerializer

    def post(self, request):
        _, ack = self.lease_call(
            request, lambda r, lid, d: leasing.heartbeat(r, lid, d.get("progress"))
        )
        return Response(ack)


def _artifact_keys(attempt, refs: list[dict], max_bytes: int) -> set[str]:
    """Artifact URIs that point into this attempt's own prefix, were requested through
    the protocol and exist in the store; each other one is audited and ignored."""
    from apps.audit.actions import record

    prefix = storage.attempt_prefix(attempt)
    known = set(Artifact.objects.filter(attempt=attempt).values_list("key", flat=True))
    keys = set()
    for ref in refs:
        key = storage.key_from_uri(ref.get("uri", ""))
        size = storage.size_of(key) if key and key.startswith(prefix) and key in known else None
        if size is None or size > max_bytes:
            record(
                "artifact.rejected",
                actor="runner",
                run=attempt.run,
                target=str(ref.get("uri", ""))[:200],
                why="not in this attempt's storage prefix, not uploaded, or too large",
            )
            continue
        keys.add(key)
    return keys


class CompleteView(RunnerView):
    serializer_class = s.CompleteSerializer

    def post(self, request):
        data = self.message(request)
        self._lease_id = data["lease_id"]
        lease = leasing.find_lease(request.user, data["lease_id"])
        keys = set()
        if lease.state in leasing.LEASE_LIVE and data.get("artifacts"):
            policy = policy_for(lease.attempt.run.repository)
            keys = _artifact_keys(lease.attempt, data["artifacts"], policy.max_artifact_bytes)
        body = (
            {k: v for k, v in request.data.items() if k != "type"}
            if isinstance(request.data, dict)
            else {}
        )
        leasing.complete(request.user, data["lease_id"], {**body, "status": data["status"]}, keys)
        return Response({"type": "CompleteAck", "lease_id": data["lease_id"], "accepted": True})


class CancelAckView(RunnerView):
    serializer_class = s.CancelAckSerializer

    def post(self, request):
        data, _ = self.lease_call(request, leasing.cancel_ack)
        return Response(
            {"type": "CancelAcknowledged", "lease_id": data["lease_id"], "accepted": True}
        )


class LogView(RunnerView):
    parser_classes: list = []
    body_limit_setting = "DELTACI_MAX_LOG_CHUNK_BYTES"

    def post(self, request):
        lease_id = request.META.get("HTTP_X_DELTA_LEASE", "")
        self._lease_id = lease_id
        m = _RANGE.match(request.META.get("HTTP_CONTENT_RANGE", ""))
        if not m:
            raise ApiError("INVALID_REQUEST", "Content-Range must be 'bytes START-END/*'")
        data = request.body
        start, end = int(m.group(1)), int(m.group(2))
        if not data or end != start + len(data) - 1:
            raise ApiError("INVALID_REQUEST", "Content-Range does not match the body length")
        lease = leasing.find_lease(request.user, lease_id)
        leasing._require_live(lease)
        attempt = lease.attempt
        if attempt.state not in (*ATTEMPT_LEASED, "CANCEL_REQUESTED"):
            raise leasing.StaleLease("LEASE_ENDED")
        policy = policy_for(attempt.run.repository)
        try:
            next_offset = logs.append(attempt, start, data, max_bytes=policy.max_log_bytes)
        except logs.LogGap as gap:
            raise ApiError(
                "RANGE_NOT_SATISFIABLE",
                "chunk starts beyond the stored log",
                {"next_offset": gap.next_offset},
                extra={"next_offset": gap.next_offset},
            ) from None
        return Response({"type": "LogAck", "next_offset": next_offset})


class ArtifactRequestView(RunnerView):
    serializer_class = s.ArtifactUploadSerializer

    def post(self, request):
        data = self.message(request)
        self._lease_id = data["lease_id"]
        lease = leasing.find_lease(request.user, data["lease_id"])
        leasing._require_live(lease)
        attempt = lease.attempt
        policy = policy_for(attempt.run.repository)
        if data["size"] > policy.max_artifact_bytes:
            raise ApiError(
                "PAYLOAD_TOO_LARGE",
                f"artifact exceeds {policy.max_artifact_bytes} bytes",
                {"limit": policy.max_artifact_bytes},
            )
        key = storage.attempt_prefix(attempt) + data["name"]
        art, _ = Artifact.objects.update_or_create(
            key=key,
            defaults={
                "attempt": attempt,
                "name": data["name"],
                "artifact_type": data["artifact_type"],
                "size": data["size"],
                "sha256": data.get("sha256", ""),
                "content_type": data["content_type"],
            },
        )
        upload = storage.upload_instructions(
            key, size=data["size"], content_type=data["content_type"]
        )
        return Response(
            {"artifact_id": str(art.pk), "uri": storage.uri_for(key), "upload": upload},
            status=status.HTTP_201_CREATED,
        )
