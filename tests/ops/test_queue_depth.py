"""GET /api/v1/runners/queue-depth: the number KEDA scales runner pods on. Who may read
it, what it counts, that it stays one query, and what it does with hostile input."""

import pytest

from apps.ops.checks import check_metrics_settings
from apps.runs.models import Repository
from tests.conftest import job_spec

TOKEN = "q" * 40
URL = "/api/v1/runners/queue-depth"


@pytest.fixture
def scaler(client, settings):
    settings.DELTACI_QUEUE_TOKEN = TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


def depth(client, **params) -> int:
    resp = client.get(URL, params)
    assert resp.status_code == 200, resp.content
    assert resp["Cache-Control"] == "no-store"
    return resp.json()["queued"]


def test_it_counts_what_a_runner_with_those_labels_could_take(scaler, make_run, runner_factory):
    make_run(
        [
            job_spec("any"),
            job_spec("linux", runs_on=["os:linux"]),
            job_spec("gpu", runs_on=["os:linux", "gpu"]),
            job_spec("later", needs=["any"]),  # not queued yet
        ]
    )
    assert depth(scaler, environment="dev") == 1
    assert depth(scaler, environment="dev", labels="os:linux") == 2
    assert depth(scaler, environment="dev", labels="gpu,os:linux,arch:amd64") == 3
    assert depth(scaler, environment="prod", labels="gpu,os:linux") == 0
    body = scaler.get(URL, {"environment": "dev", "labels": "os:linux,os:linux,a"}).json()
    assert body == {"environment": "dev", "labels": ["a", "os:linux"], "queued": 2, "cap": 1000}
    # A leased attempt is no longer waiting: the runner that took it is running.
    taker = runner_factory(capabilities=["os:linux"])
    resp = taker.client.post(
        "/api/v1/internal/lease", {"type": "LeaseRequest", "wait_seconds": 0}, format="json"
    )
    assert resp.status_code == 200
    assert depth(scaler, environment="dev", labels="os:linux") == 1


def test_it_is_per_environment(scaler, make_run):
    prod = Repository.objects.create(name="prod-repo", url="/x.git", environment="prod")
    make_run([job_spec("a"), job_spec("b")], repository=prod)
    make_run([job_spec("c")])
    assert depth(scaler, environment="prod") == 2
    assert depth(scaler, environment="dev") == 1
    assert depth(scaler, environment="staging") == 0


def test_it_is_one_query_whatever_the_queue(scaler, make_run, settings, django_assert_num_queries):
    settings.DELTACI_PREPARED_STATEMENTS = False  # Django counts only its own cursors
    make_run([job_spec(f"j{i}", runs_on=["os:linux"]) for i in range(30)])
    with django_assert_num_queries(1):
        assert depth(scaler, environment="dev", labels="os:linux") == 30
    make_run([job_spec(f"k{i}") for i in range(30)])
    with django_assert_num_queries(1):
        assert depth(scaler, environment="dev", labels="os:linux") == 60


def test_it_stops_counting_at_the_cap(scaler, make_run, monkeypatch):
    monkeypatch.setattr("apps.runners.queue.QUEUE_DEPTH_CAP", 3)
    make_run([job_spec(f"j{i}") for i in range(5)])
    assert depth(scaler, environment="dev") == 3


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "Bearer",
        "Bearer " + "q" * 39,
        "Bearer " + "q" * 41,
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        "Bearer " + "q" * 100_000,
        "Bearer \x00" + TOKEN,
    ],
)
def test_it_refuses_missing_and_bad_tokens(client, db, settings, auth):
    settings.DELTACI_QUEUE_TOKEN = TOKEN
    extra = {} if auth is None else {"HTTP_AUTHORIZATION": auth}
    resp = client.get(URL, {"environment": "dev"}, **extra)
    assert resp.status_code == 401, resp.content
    assert resp.json()["error"]["code"] == "UNAUTHORIZED"
    assert resp["WWW-Authenticate"] == "Bearer"
    assert b"queued" not in resp.content


def test_other_credentials_do_not_open_it(client, db, settings, runner):
    """Neither a runner token, nor the metrics token, nor a session is the queue token."""
    settings.DELTACI_QUEUE_TOKEN = TOKEN
    settings.DELTACI_METRICS_TOKEN = "m" * 40
    for token in (runner.token, "m" * 40):
        resp = client.get(URL, {"environment": "dev"}, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert resp.status_code == 401
    assert runner.client.get(URL, {"environment": "dev"}).status_code == 401


def test_it_is_off_without_a_configured_token(client, db, settings):
    settings.DELTACI_QUEUE_TOKEN = ""
    for auth in ("Bearer ", "Bearer x", ""):
        resp = client.get(URL, {"environment": "dev"}, HTTP_AUTHORIZATION=auth)
        assert resp.status_code == 403
        assert "DELTACI_QUEUE_TOKEN" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "environment=",
        "environment=PROD",
        "environment=dev%00",
        "environment=dev&environment=prod",
        "environment=dev&labels=a&labels=b",
        "environment=dev&label=os:linux",
        "environment=dev&labels=os linux",
        "environment=dev&labels=" + "x" * 101,
        "environment=dev&labels=" + ",".join(f"l{i}" for i in range(101)),
        "environment=dev&labels=-leading",
        "environment=dev&labels=%27%29%20OR%201%3D1--",
        "environment=dev&labels=a%0Ab",
        "environment=dev&labels=%E2%80%AEevil",
        "environment=" + "d" * 10_000,
    ],
)
def test_it_refuses_hostile_parameters(scaler, db, query, django_assert_num_queries):
    with django_assert_num_queries(0):
        resp = scaler.get(f"{URL}?{query}")
    assert resp.status_code == 400, (query, resp.content)
    assert resp.json()["error"]["code"] == "INVALID_REQUEST"


def test_it_answers_get_only(scaler, db):
    assert scaler.post(URL, {"environment": "dev"}).status_code == 405
    assert scaler.delete(URL).status_code == 405


def test_a_short_token_fails_the_startup_check(settings):
    settings.DELTACI_METRICS_ALLOWED_NETWORKS = []
    settings.DELTACI_QUEUE_TOKEN = "short"
    assert {e.id for e in check_metrics_settings(None)} == {"ops.E004"}
    settings.DELTACI_QUEUE_TOKEN = TOKEN
    assert not check_metrics_settings(None)
