"""/metrics: who may scrape, and the numbers moving when a job runs through the protocol."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.runners.supervisor import supervise_once
from tests.conftest import job_spec

TOKEN = "m" * 40


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    resp = client.get("/metrics", **extra)
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post(runner, path, body):
    return runner.client.post(f"/api/v1/internal/{path}", body, format="json")


@pytest.fixture
def scraper(client, settings):
    settings.DELTACI_METRICS_TOKEN = TOKEN
    settings.DELTACI_METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return client


def test_it_answers_loopback_and_the_token_only(client, db, settings):
    settings.DELTACI_METRICS_TOKEN = TOKEN
    settings.DELTACI_METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    outsider = {"REMOTE_ADDR": "198.51.100.7"}
    denied = client.get("/metrics", **outsider)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "FORBIDDEN"
    ok = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **outsider)
    assert ok.status_code == 200
    assert b"deltaci_runs" in ok.content


def test_by_default_even_loopback_needs_the_token(client, db, settings):
    """A reverse proxy on the same host makes every visitor a loopback client."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    manage = str(Path(__file__).resolve().parents[2] / "manage.py")
    code = "from django.conf import settings; print(settings.DELTACI_METRICS_ALLOWED_NETWORKS)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELTACI_")}
    out = subprocess.run(
        [sys.executable, manage, "shell", "-c", code],
        env={**env, "DELTACI_ENV_FILE": "/nonexistent"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
    settings.DELTACI_METRICS_TOKEN = TOKEN
    settings.DELTACI_METRICS_ALLOWED_NETWORKS = []
    for addr in ("127.0.0.1", "::1"):
        assert client.get("/metrics", REMOTE_ADDR=addr).status_code == 403
        auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
        assert client.get("/metrics", REMOTE_ADDR=addr, **auth).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Bearer " + "m" * 39},
        {"HTTP_AUTHORIZATION": "Bearer " + "m" * 41},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": "Bearer " + "x" * 100_000},
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"HTTP_X_REAL_IP": "127.0.0.1"},
        {"REMOTE_ADDR": "not-an-ip"},
        {"REMOTE_ADDR": ""},
        {"REMOTE_ADDR": "127.0.0.1.evil"},
    ],
)
def test_it_refuses_wrong_tokens_forged_addresses_and_garbage(client, db, settings, headers):
    settings.DELTACI_METRICS_TOKEN = TOKEN
    settings.DELTACI_METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    extra = {"REMOTE_ADDR": "203.0.113.9", **headers}
    assert client.get("/metrics", **extra).status_code == 403


def test_it_refuses_any_token_when_none_is_configured(client, db, settings):
    settings.DELTACI_METRICS_TOKEN = ""
    settings.DELTACI_METRICS_ALLOWED_NETWORKS = []
    for auth in ("Bearer ", "Bearer x", ""):
        resp = client.get("/metrics", HTTP_AUTHORIZATION=auth, REMOTE_ADDR="127.0.0.1")
        assert resp.status_code == 403


def test_it_skips_malformed_networks_and_allows_only_get(client, db, settings):
    settings.DELTACI_METRICS_TOKEN = ""
    settings.DELTACI_METRICS_ALLOWED_NETWORKS = ["nonsense", "10.0.0.0/33", "192.0.2.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.77").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1").status_code == 403
    assert client.post("/metrics", REMOTE_ADDR="192.0.2.77").status_code == 405
    from apps.ops.checks import check_metrics_settings

    ids = {e.id for e in check_metrics_settings(None)}
    assert ids == {"ops.E001"}


def test_it_moves_when_a_job_runs_through_the_protocol(scraper, make_run, runner):
    before = scrape(scraper)
    run = make_run([job_spec("build"), job_spec("lint")])
    queued = scrape(scraper)
    assert (
        value(queued, "deltaci_runs", state="QUEUED")
        == value(before, "deltaci_runs", state="QUEUED") + 1
    )
    assert value(queued, "deltaci_queue_depth") == value(before, "deltaci_queue_depth") + 2
    assert value(queued, "deltaci_queue_oldest_age_seconds") >= 0
    assert (
        value(queued, "deltaci_run_planning_duration_seconds_count")
        == value(before, "deltaci_run_planning_duration_seconds_count") + 1
    )

    g = post(runner, "lease", {"type": "LeaseRequest", "wait_seconds": 0}).json()
    lid = g["lease_id"]
    assert post(runner, "ack-lease", {"lease_id": lid}).status_code == 200
    for _ in range(3):
        assert post(runner, "heartbeat", {"type": "Heartbeat", "lease_id": lid}).status_code == 200
    stale = post(runner, "heartbeat", {"type": "Heartbeat", "lease_id": "n" * 43})
    assert stale.status_code == 409
    running = scrape(scraper)
    assert (
        value(running, "deltaci_leases", state="ACTIVE")
        == value(before, "deltaci_leases", state="ACTIVE") + 1
    )
    assert value(running, "deltaci_queue_depth") == value(before, "deltaci_queue_depth") + 1
    hb = "deltaci_runner_request_duration_seconds_count"
    assert (
        value(running, hb, endpoint="heartbeat", code="200")
        == value(before, hb, endpoint="heartbeat", code="200") + 3
    )
    assert (
        value(running, hb, endpoint="lease", code="200")
        == value(before, hb, endpoint="lease", code="200") + 1
    )
    stale_name = "deltaci_stale_lease_answers_total"
    assert (
        value(running, stale_name, endpoint="heartbeat", reason="UNKNOWN_LEASE")
        == value(before, stale_name, endpoint="heartbeat", reason="UNKNOWN_LEASE") + 1
    )

    done = post(runner, "complete", {"lease_id": lid, "status": "FAILED", "exit_code": 1})
    assert done.status_code == 200
    after = scrape(scraper)
    assert (
        value(after, "deltaci_jobs", state="FAILED")
        == value(before, "deltaci_jobs", state="FAILED") + 1
    )
    assert (
        value(after, "deltaci_leases", state="COMPLETED")
        == value(before, "deltaci_leases", state="COMPLETED") + 1
    )
    failures = sum(
        v for (name, _), v in after.items() if name == "deltaci_attempt_failures_total"
    ) - sum(v for (name, _), v in before.items() if name == "deltaci_attempt_failures_total")
    assert failures == 1
    assert run.pk


def test_it_counts_lease_expirations_from_the_supervisor(scraper, make_run, runner):
    make_run([job_spec("build")])
    before = scrape(scraper)
    assert post(runner, "lease", {"type": "LeaseRequest"}).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        supervise_once()
    after = scrape(scraper)
    name = "deltaci_lease_expirations_total"
    assert value(after, name) == value(before, name) + 1
    assert (
        value(after, "deltaci_leases", state="EXPIRED")
        == value(before, "deltaci_leases", state="EXPIRED") + 1
    )


def test_it_still_answers_when_the_database_is_down(scraper, db, monkeypatch):
    from django.db import OperationalError

    from apps.ops import collectors

    def broken():
        raise OperationalError("connection refused")
        yield  # pragma: no cover

    monkeypatch.setattr(collectors, "database_metrics", broken)
    samples = scrape(scraper)
    assert value(samples, "deltaci_database_up") == 0
    assert not any(name == "deltaci_runs" for name, _ in samples)
