"""GET /api/v1/runners/queue-depth?environment=ENV&labels=a,b — the queue depth an
autoscaler polls (KEDA's metrics-api scaler, deploy/k8s/base/runners/scaledjob.yaml).

Authenticated by its own token, `Authorization: Bearer $DELTACI_QUEUE_TOKEN`, which
lets its holder read one number and nothing else: it is not a runner or user
credential. Parameters are checked strictly (an unknown or repeated one is a 400, so a
misspelt scaler URL fails loudly instead of scaling on the wrong count)."""

import re

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.runners import queue
from apps.runs.choices import Environment
from lib.api_errors import ApiError
from lib.openapi import OBJECT, operation
from lib.tokens import bearer_token, same_secret

MAX_LABELS = 100
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,99}$")
PARAMS = {"environment", "labels"}


def _params(query) -> tuple[str, list[str]]:
    unknown = set(query) - PARAMS
    if unknown:
        raise ApiError("INVALID_REQUEST", "unknown parameter", {"unknown": sorted(unknown)[:10]})
    if any(len(query.getlist(name)) > 1 for name in PARAMS):
        raise ApiError("INVALID_REQUEST", "a parameter is repeated")
    environment = query.get("environment", "")
    if environment not in Environment.values:
        raise ApiError(
            "INVALID_REQUEST", "environment must be one of", {"allowed": Environment.values}
        )
    raw = query.get("labels", "")
    labels = [label for label in raw.split(",") if label] if raw else []
    if len(labels) > MAX_LABELS:
        raise ApiError("INVALID_REQUEST", f"at most {MAX_LABELS} labels")
    if not all(LABEL.match(label) for label in labels):
        raise ApiError("INVALID_REQUEST", "labels are comma-separated names like os:linux")
    return environment, sorted(set(labels))


class QueueDepthView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get_authenticate_header(self, request) -> str:
        return "Bearer"  # so a refused token is a 401 that names the scheme

    @extend_schema(
        **operation(
            {200: OBJECT},
            auth=[],
            operation_id="runners_queue_depth",
            parameters=[
                OpenApiParameter("environment", str, enum=list(Environment.values)),
                OpenApiParameter("labels", str, description="comma-separated runner labels"),
            ],
            description="Queued jobs for an autoscaler: `Authorization: Bearer "
            "$DELTACI_QUEUE_TOKEN`.",
        )
    )
    def get(self, request):
        expected = settings.DELTACI_QUEUE_TOKEN
        if not expected:
            raise ApiError("FORBIDDEN", "the queue depth endpoint is off: set DELTACI_QUEUE_TOKEN")
        if not same_secret(bearer_token(request.META.get("HTTP_AUTHORIZATION")), expected):
            raise AuthenticationFailed("missing or invalid queue token")
        environment, labels = _params(request.query_params)
        depth = queue.queue_depth(environment, labels)
        return Response(
            {
                "environment": environment,
                "labels": labels,
                "queued": depth,
                "cap": queue.QUEUE_DEPTH_CAP,
            },
            headers={"Cache-Control": "no-store"},
        )
