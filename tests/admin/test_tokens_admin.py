"""Registration tokens made in admin: the token is shown once, in the message after the
save, stored only as a hash, and never displayed again; revoking stops registrations."""

import re

from apps.audit.models import AuditEvent
from apps.runners.models import RunnerRegistrationToken
from lib.tokens import hash_token
from tests.admin.conftest import action, messages_of

ADD = "/admin/runners/runnerregistrationtoken/add/"
LIST = "/admin/runners/runnerregistrationtoken/"


def register(client, token: str):
    return client.post(
        "/api/v1/runners/register",
        {"name": "fresh", "capabilities": ["os:linux"], "version": "1"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def create(admin, **fields):
    data = {"name": "ci-pool", "environment": "staging", "labels": '["gpu"]'}
    data.update(fields)
    return admin.post(ADD, data, follow=True)


def test_it_shows_the_new_token_once_and_stores_only_its_hash(admin, api):
    r = create(admin)
    [message] = [m for m in messages_of(r) if "Registration token" in m]
    token = re.search(r"staging: (\S+) — copy it now", message).group(1)
    assert len(token) >= 43
    row = RunnerRegistrationToken.objects.get()
    assert row.token_hash == hash_token(token) and row.labels == ["gpu"]
    assert row.created_by == "user:olga"
    assert all(token not in str(getattr(row, f.attname)) for f in row._meta.fields)
    for page in (LIST, f"{LIST}{row.pk}/change/", LIST):
        assert token not in admin.get(page).content.decode()
    r = register(api, token)
    assert r.status_code in (200, 201), r.content
    assert AuditEvent.objects.filter(action="registration_token.create").exists()
    assert token not in str(list(AuditEvent.objects.values_list("details", "target")))


def test_it_refuses_bad_labels_and_a_past_expiry(admin):
    for fields in (
        {"labels": '"gpu"'},
        {"labels": "[1]"},
        {"labels": '["' + "x" * 101 + '"]'},
        {"labels": "[" + ",".join(['"l"'] * 51) + "]"},
        {"expires_at_0": "2000-01-01", "expires_at_1": "00:00:00"},
        {"environment": "moon"},
    ):
        r = create(admin, **fields)
        assert r.status_code == 200 and r.context["adminform"].form.errors, fields
    assert not RunnerRegistrationToken.objects.exists()


def test_revoking_a_token_stops_registrations(admin, api):
    r = create(admin)
    token = re.search(r"staging: (\S+) — copy", " ".join(messages_of(r))).group(1)
    row = RunnerRegistrationToken.objects.get()
    r = action(admin, LIST, "revoke_tokens", [row.pk])
    assert "revoked 1 registration token(s)" in messages_of(r)
    assert register(api, token).status_code in (401, 403)
    assert "revoked" in admin.get(LIST).content.decode()
    assert AuditEvent.objects.filter(action="registration_token.revoke").count() == 1
    action(admin, LIST, "revoke_tokens", [row.pk])  # again: nothing more
    assert AuditEvent.objects.filter(action="registration_token.revoke").count() == 1
