"""The run API in the OpenAPI schema: what each endpoint takes and answers."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter

from apps.runs.api.serializers import RerunSerializer, RunListQuery, TriggerRunSerializer
from lib.openapi import OBJECT, operation


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.apitokens.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token dci_…`, from `manage.py create_api_token USER` or admin.",
        }


RUN_ID = OpenApiParameter("run_id", str, OpenApiParameter.PATH, description="the run's id")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="at most 200 printable characters; a repeat returns the same run",
)

LIST = operation({200: OBJECT}, parameters=[RunListQuery], operation_id="runs_list")
TRIGGER = operation(
    {201: OBJECT, 200: OBJECT},
    request=TriggerRunSerializer,
    errors=(404, 413),
    parameters=[IDEMPOTENCY_KEY],
    operation_id="runs_create",
)
DETAIL = operation({200: OBJECT}, errors=(404,), parameters=[RUN_ID], operation_id="runs_read")
CANCEL = operation(
    {202: OBJECT}, errors=(404, 409, 413), parameters=[RUN_ID], operation_id="runs_cancel"
)
RERUN = operation(
    {201: OBJECT, 200: OBJECT},
    request=RerunSerializer,
    errors=(404, 409, 413),
    parameters=[RUN_ID, IDEMPOTENCY_KEY],
    operation_id="runs_rerun",
)
