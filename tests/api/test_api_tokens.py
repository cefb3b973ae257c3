"""Users' API tokens are like runner tokens: 256 random bits behind a `dci_` prefix,
stored only as a hash, shown once (command or admin), with last use, expiry and
revocation; DRF's clear-text tokens are imported hashed (30 days' grace) and deleted."""

import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.apitokens.models import ApiToken
from apps.audit.models import AuditEvent
from lib.tokens import hash_token
from tests.admin.conftest import action, messages_of

RUNS = "/api/v1/runs"
ADD = "/admin/apitokens/apitoken/add/"
LIST = "/admin/apitokens/apitoken/"


def create(username: str, *args: str) -> str:
    out = io.StringIO()
    call_command("create_api_token", username, *args, stdout=out)
    return out.getvalue().splitlines()[-1]


def get(token: str, path: str = RUNS):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get(path)


def test_a_token_is_long_prefixed_hashed_and_works(member):
    token = create("mia", "--name", "ci script")
    assert token.startswith("dci_") and len(token) >= 4 + 43  # 32 random bytes
    row = ApiToken.objects.get()
    assert row.token_hash == hash_token(token) and row.name == "ci script"
    assert all(token not in str(getattr(row, f.attname)) for f in row._meta.fields)
    assert row.expires_at - timezone.now() > timedelta(days=89)
    assert row.last_used_at is None
    assert get(token).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None
    event = AuditEvent.objects.get(action="api_token.create")
    assert event.target == row.token_prefix and token not in str(event.details)


def test_revoked_expired_and_inactive_tokens_are_refused(member, time_machine):
    revoked, expired, inactive = create("mia"), create("mia", "--days", "1"), create("mia")
    from apps.apitokens.actions import do_revoke_api_token

    do_revoke_api_token(ApiToken.objects.get(token_hash=hash_token(revoked)), actor="t")
    r = get(revoked)
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    assert r["WWW-Authenticate"] == "Token"
    time_machine.move_to(timezone.now() + timedelta(days=1, minutes=1), tick=False)
    assert get(expired).status_code == 401
    assert get(inactive).status_code == 200
    member.is_active = False
    member.save()
    assert get(inactive).status_code == 401


@pytest.mark.parametrize(
    "token",
    ["", "dci_", "x" * 201, "dci_\x00abc", "dci_" + "A" * 43, "a b", "Ω" * 10],
    ids=["empty", "prefix", "huge", "nul", "unknown", "space", "unicode"],
)
def test_malformed_and_unknown_tokens_are_refused(member, token):
    assert get(token).status_code == 401


def test_the_command_refuses_bad_input(member):
    for args in (["nobody"], ["mia", "--days", "0"], ["mia", "--days", "99999"]):
        with pytest.raises(CommandError):
            create(*args)
    with pytest.raises(CommandError):
        create("mia", "--name", "x" * 101)
    with pytest.raises(CommandError):
        create("mia", "--name", "bad\nname")
    assert not ApiToken.objects.exists()


def test_drf_clear_text_tokens_are_gone(db):
    with pytest.raises(CommandError):
        call_command("drf_create_token", "anyone", stdout=io.StringIO())


def test_admin_shows_the_token_once_and_never_the_hash(operator, member):
    from django.test import Client

    admin = Client()
    admin.force_login(operator)
    r = admin.post(ADD, {"user": member.pk, "name": "deploy bot"}, follow=True)
    [message] = [m for m in messages_of(r) if "copy it now" in m]
    token = re.search(r"mia: (dci_\S+) — copy it now", message).group(1)
    row = ApiToken.objects.get()
    assert row.token_hash == hash_token(token) and row.created_by == "user:olga"
    for page in (LIST, f"{LIST}{row.pk}/change/"):
        html = admin.get(page).content.decode()
        assert token not in html and row.token_hash not in html
        assert row.token_prefix in html
    assert get(token).status_code == 200
    r = action(admin, LIST, "revoke_tokens", [row.pk])
    assert "revoked 1 API token(s)" in messages_of(r)
    assert get(token).status_code == 401
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    r = admin.post(ADD, {"user": member.pk, "expires_at": past})
    assert r.status_code == 200 and ApiToken.objects.count() == 1


def test_existing_drf_tokens_are_imported_hashed_and_deleted(member):
    """The data migration: old clients keep working for 30 days, no clear key remains."""
    import importlib

    migration = importlib.import_module("apps.apitokens.migrations.0002_i13_import_drf_tokens")
    key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, '
            '"created" timestamp with time zone NOT NULL, "user_id" integer NOT NULL)'
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)", [key, timezone.now(), member.pk]
        )
    from django.apps import apps

    migration.import_drf_tokens(apps, SimpleNamespace(connection=connection))
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
    row = ApiToken.objects.get()
    assert row.token_hash == hash_token(key) and row.user == member
    assert timedelta(days=29) < row.expires_at - timezone.now() <= timedelta(days=30)
    assert get(key).status_code == 200
