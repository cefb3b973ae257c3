"""The runner protocol (docs/protocol.md): parse, authorize, call the lease
service, answer. No state logic here."""

import logging
import re
import time

from django.conf import settings
from django.db import close_old_connections
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.artifacts.logs import LogGap
from apps.runners import dispatch, heartbeats, leasing, uploads
from apps.runners.actions import RegistrationRefused, check_registration_token, do_register_runner
from apps.runners.api import schema
from apps.runners.api import serializers as s
from apps.runners.api.auth import RunnerTokenAuthentication
from apps.runners.api.protocol import ProtocolVersioned
from apps.runners.models import Runner
from lib import wakeup
from lib.api_errors import ApiError, StrictJSONParser, check_size
from lib.logging import bind
from lib.tokens import bearer_token, short_hash

log = logging.getLogger(__name__)
_RANGE = re.compile(r"^bytes (\d{1,15})-(\d{1,15})/(\*|\d{1,15})$")


class IsRunner(BasePermission):
    def has_permission(self, request, view) -> bool:
        runner = request.user
        if not isinstance(runner, Runner):
            return False
        if not runner.enabled:
            raise ApiError("FORBIDDEN", "runner is disabled")
        return True


def _stale(lease_id: str, reason: str) -> ApiError:
    return ApiError(
        "STALE_LEASE",
        f"lease is stale: {reason}",
        extra={"type": "StaleLease", "lease_id": lease_id, "reason": reason},
    )


class RunnerView(ProtocolVersioned, APIView):
    """Authenticated runner messages: size-limited, strict JSON, fenced by a lease."""

    authentication_classes = [RunnerTokenAuthentication]
    permission_classes = [IsRunner]
    parser_classes = [StrictJSONParser]
    serializer_class: type[s.serializers.Serializer] | None = None
    body_limit_setting = "DELTACI_MAX_BODY_BYTES"
    _lease_id = ""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        check_size(request, getattr(settings, self.body_limit_setting))

    def message(self, request) -> dict:
        if not isinstance(request.data, dict):
            raise ApiError("INVALID_REQUEST", "body must be a JSON object")
        if self.serializer_class is None:
            raise TypeError(f"{type(self).__name__} reads messages without a serializer_class")
        ser = self.serializer_class(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        if "lease_id" in data:
            # The request's log scope (apps/ops/middleware.py) ends with the request.
            self._lease_id = data["lease_id"]
            bind(lease=short_hash(data["lease_id"]))
        return data

    def handle_exception(self, exc):
        if isinstance(exc, leasing.StaleLease):
            exc = _stale(self._lease_id, exc.reason)
        elif isinstance(exc, leasing.InvalidState):
            exc = ApiError("INVALID_STATE", str(exc))
        elif isinstance(exc, uploads.UploadRefused):
            exc = ApiError(exc.code, exc.message, exc.details)
        elif isinstance(exc, dispatch.RunnerGone):
            exc = ApiError("UNAUTHORIZED", "the runner was revoked or removed while it waited")
        return super().handle_exception(exc)


class RegisterView(ProtocolVersioned, APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [StrictJSONParser]

    @extend_schema(**schema.REGISTER)
    def post(self, request):
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        try:
            check_registration_token(token)
        except RegistrationRefused as exc:
            raise ApiError("UNAUTHORIZED", str(exc)) from None
        check_size(request, settings.DELTACI_MAX_BODY_BYTES)
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

    @extend_schema(**schema.message(s.LeaseRequestSerializer, empty_ok=True))
    def post(self, request):
        data = self.message(request)
        runner = request.user
        if runner.draining:
            raise ApiError("FORBIDDEN", "runner is draining")
        wait = min(data["wait_seconds"], settings.DELTACI_MAX_WAIT_SECONDS)
        caps = data.get("capabilities")
        granted = dispatch.claim(runner, caps)
        if granted is None and wait > 0:
            granted = self._long_poll(runner, caps, time.monotonic() + wait)
        if granted is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(granted.body)

    def _long_poll(self, runner, caps, deadline: float):
        """Wait for a wake-up (or a poll interval) between claims. No transaction or row
        lock is held while waiting."""
        with wakeup.listener() as listen:
            while True:
                # Again: now a signal cannot be missed. The runner is read again each
                # time, as it may be revoked or removed while this request waits.
                granted = dispatch.claim(runner, caps, recheck=True)
                if granted is not None or time.monotonic() >= deadline:
                    return granted
                close_old_connections()
                listen.wait(deadline)


class AckView(RunnerView):
    serializer_class = s.AckSerializer

    @extend_schema(**schema.message(s.AckSerializer))
    def post(self, request):
        data = self.message(request)
        leasing.ack(request.user, data["lease_id"])
        return Response({"type": "LeaseAcked", "lease_id": data["lease_id"], "accepted": True})


class HeartbeatView(RunnerView):
    serializer_class = s.HeartbeatSerializer

    @extend_schema(**schema.message(s.HeartbeatSerializer))
    def post(self, request):
        data = self.message(request)
        return Response(heartbeats.heartbeat(request.user, data["lease_id"], data.get("progress")))


class CompleteView(RunnerView):
    serializer_class = s.CompleteSerializer

    @extend_schema(**schema.message(s.CompleteSerializer))
    def post(self, request):
        data = self.message(request)
        keys = uploads.verified_keys(request.user, data["lease_id"], data.get("artifacts"))
        leasing.complete(request.user, data["lease_id"], data, keys)
        return Response({"type": "CompleteAck", "lease_id": data["lease_id"], "accepted": True})


class CancelAckView(RunnerView):
    serializer_class = s.CancelAckSerializer

    @extend_schema(**schema.message(s.CancelAckSerializer))
    def post(self, request):
        data = self.message(request)
        keys = uploads.verified_keys(request.user, data["lease_id"], data.get("artifacts"))
        leasing.cancel_ack(request.user, data["lease_id"], data, keys)
        return Response(
            {"type": "CancelAcknowledged", "lease_id": data["lease_id"], "accepted": True}
        )


class LogView(RunnerView):
    parser_classes: list = []
    body_limit_setting = "DELTACI_MAX_LOG_CHUNK_BYTES"

    @extend_schema(**schema.LOG)
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
        try:
            next_offset = uploads.append_log(request.user, lease_id, start, data)
        except LogGap as gap:
            raise ApiError(
                "RANGE_NOT_SATISFIABLE",
                "chunk starts beyond the stored log",
                {"next_offset": gap.next_offset},
                extra={"next_offset": gap.next_offset},
            ) from None
        return Response({"type": "LogAck", "next_offset": next_offset})


class ArtifactRequestView(RunnerView):
    serializer_class = s.ArtifactUploadSerializer

    @extend_schema(**schema.message(s.ArtifactUploadSerializer, created=True))
    def post(self, request):
        data = self.message(request)
        answer = uploads.request_upload(request.user, data["lease_id"], data)
        return Response(answer, status=status.HTTP_201_CREATED)
