"""Failed logins (team login page and admin's) and bad API tokens are audited — with
the client address, never the secret — and throttled per account name and per address
for a window; a cache that does not answer never locks anyone out."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from tests.api.test_api_tokens import create


@pytest.fixture
def limits(settings):
    settings.DELTACI_AUTH_MAX_FAILURES_PER_USER = 3
    settings.DELTACI_AUTH_MAX_FAILURES_PER_IP = 6
    settings.DELTACI_AUTH_FAILURE_WINDOW_SECONDS = 900
    return settings


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", password="right-password-123", is_staff=True)


def login(password: str, *, username="alice", ip="192.0.2.1", path="/login") -> bool:
    """True when the login worked (the session has a user)."""
    client = Client(REMOTE_ADDR=ip)
    client.post(path, {"username": username, "password": password})
    return "_auth_user_id" in client.session


def token_get(token: str, ip="192.0.2.1"):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/runs")


def test_a_failed_login_is_audited_without_the_password(alice, limits):
    assert not login("wrong-password-1")
    event = AuditEvent.objects.get(action="auth.failed")
    assert event.actor == "login" and event.target == "alice"
    assert event.details["ip"] == "192.0.2.1"
    assert "wrong-password-1" not in str(AuditEvent.objects.values_list("details", "target"))
    assert login("right-password-123")


def test_repeated_failures_lock_the_name_for_the_window(alice, limits, time_machine):
    for _ in range(3):
        assert not login("nope")
    assert not login("right-password-123")  # throttled: not even checked
    assert not login("right-password-123", ip="198.51.100.2")  # per name, any address
    assert not login("right-password-123", path="/admin/login/")  # admin's login too
    assert AuditEvent.objects.filter(action="auth.throttled").count() == 1  # noted once
    assert AuditEvent.objects.filter(action="auth.failed").count() == 3
    time_machine.move_to(timezone.now() + timedelta(seconds=901), tick=False)
    assert login("right-password-123")


def test_a_good_login_clears_the_names_count(alice, limits):
    for _ in range(2):
        assert not login("nope")
    assert login("right-password-123")
    for _ in range(2):
        assert not login("nope")
    assert login("right-password-123")


def test_one_address_failing_for_many_names_is_throttled(alice, limits):
    for i in range(6):
        assert not login("x", username=f"guess{i}")
    assert not login("right-password-123")
    assert login("right-password-123", ip="198.51.100.2")


def test_bad_api_tokens_are_audited_by_hash_and_throttled(member, limits):
    good = create("mia")
    bad = "dci_" + "B" * 43
    for _ in range(6):
        r = token_get(bad)
        assert r.status_code == 401
    event = AuditEvent.objects.filter(action="auth.failed", actor="api-token").first()
    assert event.details["why"] == "unknown token" and bad not in str(event.target)
    assert len(event.target) == 12
    r = token_get(good)
    assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
    assert token_get(good, ip="198.51.100.2").status_code == 200


def test_a_cache_outage_never_locks_anyone_out(alice, limits, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # discard port: nothing listens
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    for _ in range(4):
        assert not login("nope")
    assert AuditEvent.objects.filter(action="auth.failed").count() == 4
    assert login("right-password-123")
