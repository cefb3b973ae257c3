"""The contract's error body, `{"error": {"code", "message", "details"}}`, for every API
error, and a DRF exception handler that never leaks a traceback or SQL."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from lib import jsonsafe

log = logging.getLogger(__name__)

CODE_STATUS = {
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "INVALID_STATE": 409,
    "STALE_LEASE": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "RANGE_NOT_SATISFIABLE": 416,
    "UPGRADE_REQUIRED": 426,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
}


class ApiError(Exception):
    """Raised anywhere under an API view to answer with the contract's error body."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.extra = extra or {}
        self.status = http_status or CODE_STATUS[code]


def check_size(request: HttpRequest, limit: int) -> None:
    """413 before the body is read (Django reads at most Content-Length bytes)."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not raw.isdigit():
        raise ApiError("INVALID_REQUEST", "bad Content-Length")
    if int(raw) > limit:
        raise ApiError("PAYLOAD_TOO_LARGE", f"body exceeds {limit} bytes", {"limit": limit})


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_json(
    code: str, message: str, details: dict[str, Any] | None = None, *, status: int | None = None
) -> JsonResponse:
    """The contract's error body outside DRF (plain Django views): webhooks, uploads,
    metrics, page polls. `status` defaults to the code's."""
    return JsonResponse(error_body(code, message, details), status=status or CODE_STATUS[code])


def error_response(err: ApiError) -> Response:
    body = {**err.extra, **error_body(err.code, err.message, err.details)}
    return Response(body, status=err.status)


class StrictJSONParser(JSONParser):
    """The parser of every DRF view (settings.REST_FRAMEWORK): JSON nested deeper than
    lib.jsonsafe allows is a 400 like any other bad JSON, never a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return jsonsafe.check_depth(super().parse(stream, media_type, parser_context))
        except (RecursionError, jsonsafe.TooDeep):
            limit = jsonsafe.MAX_DEPTH
            raise exceptions.ParseError(f"JSON nested deeper than {limit} levels") from None


_DRF_CODES = [
    (exceptions.ParseError, "INVALID_REQUEST"),
    (exceptions.ValidationError, "INVALID_REQUEST"),
    (exceptions.UnsupportedMediaType, "INVALID_REQUEST"),
    (exceptions.NotAuthenticated, "UNAUTHORIZED"),
    (exceptions.AuthenticationFailed, "UNAUTHORIZED"),
    (exceptions.PermissionDenied, "FORBIDDEN"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "INVALID_REQUEST"),
    (exceptions.Throttled, "RATE_LIMITED"),
]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return error_response(ApiError("PAYLOAD_TOO_LARGE", "request body too large"))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    for cls, code in _DRF_CODES:
        if isinstance(exc, exceptions.APIException) and isinstance(exc, cls):
            details = exc.detail if isinstance(exc, exceptions.ValidationError) else {}
            if not isinstance(details, dict):
                details = {"errors": details}
            message = "invalid request" if details else str(exc.detail)
            # DRF answers 403 for a missing login when no scheme can be named; keep that.
            # A wrong content type is a bad request here (the contract has no 415).
            http = exc.status_code
            if isinstance(exc, exceptions.UnsupportedMediaType):
                http = CODE_STATUS[code]
            if http == status.HTTP_403_FORBIDDEN:
                code = "FORBIDDEN"
            resp = Response(error_body(code, message, details), status=http)
            auth_header = getattr(exc, "auth_header", None)
            if auth_header:
                resp["WWW-Authenticate"] = auth_header
            return resp
    log.exception("unhandled API error", extra={"view": type(context.get("view")).__name__})
    return Response(
        error_body("INTERNAL_ERROR", "internal error"),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
