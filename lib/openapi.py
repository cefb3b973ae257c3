"""Shared pieces of the OpenAPI schema (drf-spectacular): the contract's error body and
one helper that declares an operation's request, answers and errors, so each view says
what it takes and gives in one line."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)
ERROR_STATUSES = {
    400: "invalid request (bad JSON, bad fields, bad headers)",
    401: "missing or invalid credentials",
    403: "not allowed",
    404: "no such object (or not visible to you)",
    409: "invalid state, or a stale lease",
    413: "body too large",
    416: "log chunk starts beyond the stored log",
}


def operation(
    answers: dict[int, Any], *, request: Any = None, errors: tuple[int, ...] = (), **extra: Any
) -> dict[str, Any]:
    """Keyword arguments for extend_schema(): `answers` maps each success status to its
    body (a serializer, OpenApiTypes.OBJECT for a JSON object, None for no body)."""
    responses: dict[int, Any] = {
        code: OpenApiResponse(response=body) if body is not None else OpenApiResponse()
        for code, body in answers.items()
    }
    for code in (400, 401, 403, *errors):
        responses[code] = OpenApiResponse(response=ERROR, description=ERROR_STATUSES[code])
    return {"request": request, "responses": responses, **extra}


OBJECT = OpenApiTypes.OBJECT
