"""The OpenAPI schema (drf-spectacular) of the run API and the runner protocol, its
browsable docs served without any CDN, and schemathesis sending generated requests —
valid and invalid — to every operation on a live loopback server: no answer is a 5xx."""

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from apps.apitokens.actions import do_create_api_token
from apps.runners.actions import do_create_registration_token, do_register_runner
from apps.runs.actions import do_add_repository

OPERATIONS = {
    ("GET", "/api/v1/runs"),
    ("POST", "/api/v1/runs"),
    ("GET", "/api/v1/runs/{run_id}"),
    ("POST", "/api/v1/runs/{run_id}/cancel"),
    ("POST", "/api/v1/runs/{run_id}/rerun"),
    ("POST", "/api/v1/runners/register"),
    *(
        ("POST", f"/api/v1/internal/{name}")
        for name in ("lease", "ack-lease", "heartbeat", "complete", "cancel-ack", "log")
    ),
    ("POST", "/api/v1/internal/artifacts"),
    ("GET", "/api/v1/runners/queue-depth"),
}


def test_the_schema_describes_the_run_api_and_the_runner_protocol(client):
    r = client.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    schema = r.json()
    found = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert found == OPERATIONS
    assert schema["components"]["securitySchemes"]["runnerToken"]["scheme"] == "bearer"
    lease = schema["paths"]["/api/v1/internal/lease"]["post"]
    assert {"200", "204", "400", "401", "409"} <= set(lease["responses"])


def test_the_docs_load_their_assets_from_this_server(client):
    r = client.get("/api/docs/")
    assert r.status_code == 200
    page = r.content.decode()
    assert "/static/drf_spectacular_sidecar/" in page
    assert "cdn." not in page and "unpkg" not in page and "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}"), asset


# --- schemathesis --------------------------------------------------------------------


@pytest.fixture
def credentials(transactional_db, settings):
    """A superuser's API token (every run permission), a runner token, a registration
    token and a run, so generated requests get past authentication into the views."""
    admin = User.objects.create_superuser("root", password="x")
    repo = do_add_repository("demo", "/nonexistent/demo.git", actor="system")
    _, registration = do_create_registration_token()
    _, runner_token = do_register_runner(registration, name="r1", capabilities=[], version="t")
    from apps.runs.actions import do_create_run

    do_create_run(
        repo, trigger="manual", ref="refs/heads/main", commit_sha="a" * 40, actor="system"
    )
    # Set once here: each generated example setting it again would stack an override
    # per example (hundreds of them) onto the settings.
    settings.DELTACI_MAX_WAIT_SECONDS = 0  # lease requests answer at once
    settings.DELTACI_QUEUE_TOKEN = "q" * 32
    return {
        "queue": "Bearer " + "q" * 32,
        "api": f"Token {do_create_api_token(admin)[1]}",
        "runner": f"Bearer {runner_token}",
        "register": f"Bearer {registration}",
    }


@pytest.fixture
def api_schema(transactional_db):
    from deltaci.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(
    max_examples=15,  # per operation, besides schemathesis' own coverage cases: ~40 s
    derandomize=True,  # the same requests on every run: CI is reproducible
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_5xx(case, credentials):
    kind = (
        "register"
        if "register" in case.path
        else "queue"
        if "queue-depth" in case.path
        else "api"
        if "/runs" in case.path
        else "runner"
    )
    response = case.call(headers={"Authorization": credentials[kind]})
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
