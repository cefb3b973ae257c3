"""The runner protocol in the OpenAPI schema: its bearer scheme, and what each message
answers (docs/protocol.md has the full shapes)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from apps.runners.api.serializers import RegisterSerializer
from lib.openapi import OBJECT, operation


class RunnerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.runners.api.auth.RunnerTokenAuthentication"
    name = "runnerToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The runner token returned by registration.",
        }


def message(request, *, empty_ok: bool = False, created: bool = False) -> dict:
    """A JSON runner message: 200 (or 201) with its answer, 409 for a stale lease."""
    answers: dict[int, Any] = {201 if created else 200: OBJECT}
    if empty_ok:
        answers[204] = None
    return operation(answers, request=request, errors=(409, 413))


REGISTER = operation({201: OBJECT}, request=RegisterSerializer, errors=(413,), auth=[])
LOG = operation(
    {200: OBJECT},
    request={"application/octet-stream": OpenApiTypes.BINARY},
    errors=(409, 413, 416),
    parameters=[
        OpenApiParameter("X-Delta-Lease", str, OpenApiParameter.HEADER, required=True),
        OpenApiParameter(
            "Content-Range",
            str,
            OpenApiParameter.HEADER,
            required=True,
            description="bytes START-END/*",
        ),
    ],
)
