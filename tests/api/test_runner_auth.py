"""Runner authentication: registration tokens (scoped, expiring, revocable), runner tokens
(hashed, revocable), and the contract's error bodies for 401 and 403."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.runners.actions import do_create_registration_token, do_revoke_runner
from apps.runners.models import Lease, Runner, RunnerRegistrationToken
from lib.tokens import hash_token
from tests.protocol.proto import BASE

REGISTER = "/api/v1/runners/register"
BODY = {"name": "r1", "capabilities": ["os:linux", "arch:amd64"], "version": "1.0"}


def register(token: str | None, body=None, **extra):
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.post(
        REGISTER, body if body is not None else BODY, format="json", **headers, **extra
    )


def test_it_registers_a_runner_with_a_registration_token(db, settings):
    row, token = do_create_registration_token(environment="staging", labels=["pool:a"])
    r = register(token)
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"runner_id", "token", "lease_ttl_seconds", "heartbeat_interval_seconds"}
    assert body["lease_ttl_seconds"] == settings.DELTACI_LEASE_TTL_SECONDS
    assert body["heartbeat_interval_seconds"] == settings.DELTACI_HEARTBEAT_INTERVAL_SECONDS
    runner = Runner.objects.get(pk=body["runner_id"])
    assert runner.environment == "staging"
    assert runner.capabilities == ["arch:amd64", "os:linux", "pool:a"]
    assert runner.token_hash == hash_token(body["token"]) and len(body["token"]) >= 43
    assert body["token"] not in str(list(Runner.objects.values()))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert client.post(BASE + "lease", {"type": "LeaseRequest"}, format="json").status_code == 204


@pytest.mark.parametrize("case", ["missing", "unknown", "expired", "revoked", "not-bearer"])
def test_it_refuses_a_bad_registration_token(db, case):
    row, token = do_create_registration_token()
    if case == "expired":
        RunnerRegistrationToken.objects.filter(pk=row.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    if case == "revoked":
        RunnerRegistrationToken.objects.filter(pk=row.pk).update(revoked_at=timezone.now())
    if case == "missing":
        r = register(None)
    elif case == "not-bearer":
        r = APIClient().post(REGISTER, BODY, format="json", HTTP_AUTHORIZATION=f"Token {token}")
    else:
        r = register("nope" if case == "unknown" else token)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED" and set(r.json()) == {"error"}
    assert not Runner.objects.exists()
    if case in ("unknown", "expired", "revoked"):
        assert AuditEvent.objects.filter(action="auth.failed").exists()


def test_a_bad_registration_token_is_refused_before_the_body_is_judged(db):
    r = register("nope", body=[1, 2])
    assert r.status_code == 401


@pytest.mark.parametrize(
    "body",
    [[], {"capabilities": ["x"]}, {"name": "x" * 101}, {"name": "r", "capabilities": "os:linux"}],
)
def test_it_refuses_a_bad_registration_body(db, body):
    _, token = do_create_registration_token()
    r = register(token, body=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"


def test_it_refuses_an_oversized_registration(db, settings):
    settings.DELTACI_MAX_BODY_BYTES = 100
    _, token = do_create_registration_token()
    r = register(token, body={**BODY, "version": "v" * 200})
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer nope", "Bearer " + "x" * 600],
)
def test_it_refuses_a_missing_or_bad_runner_token(db, header):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    for path in ("lease", "ack-lease", "heartbeat", "complete", "cancel-ack", "log", "artifacts"):
        r = client.post(BASE + path, {"type": "LeaseRequest"}, format="json")
        assert r.status_code == 401, path
        assert set(r.json()) == {"error"} and r.json()["error"]["code"] == "UNAUTHORIZED"
        assert r["WWW-Authenticate"] == "Bearer"


def test_a_revoked_runner_is_refused_and_loses_its_leases(make_run, proto):
    make_run()
    g = proto.start()
    do_revoke_runner(proto.runner, actor="user:op")
    r = proto.heartbeat(g["lease_id"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    lease = Lease.objects.get(attempt__attempt_number=1)
    assert lease.state == "REVOKED" and lease.attempt.state == "STALE"
    assert lease.attempt.job.attempts.count() == 2  # retried elsewhere (infra budget)
    assert AuditEvent.objects.filter(action="lease.revoke").exists()
    assert AuditEvent.objects.filter(action="auth.failed").exists()


def test_a_runner_token_is_never_stored_or_audited_in_clear(db, runner):
    assert not Runner.objects.filter(token_hash=runner.token).exists()
    assert runner.token not in str(list(AuditEvent.objects.values()))


def test_last_seen_is_written_at_most_every_five_seconds(proto, time_machine):
    time_machine.move_to("2030-01-04T08:00:00Z", tick=False)
    proto.lease()
    assert Runner.objects.get(pk=proto.runner.pk).last_seen_at.isoformat() == (
        "2030-01-04T08:00:00+00:00"
    )
    time_machine.shift(4)
    proto.lease()
    assert Runner.objects.get(pk=proto.runner.pk).last_seen_at.second == 0
    time_machine.shift(1)
    proto.lease()
    assert Runner.objects.get(pk=proto.runner.pk).last_seen_at.second == 5
