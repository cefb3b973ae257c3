"""Secrets are written in admin and never displayed back: not on the list, not on the
change page, not when a form comes back with an error. Stored encrypted with the key
from the environment."""

import pytest
from cryptography.fernet import Fernet

from apps.audit.models import AuditEvent
from apps.policies import secrets
from apps.policies.models import Secret

VALUE = "hunter2-do-not-show-me"
ADD = "/admin/policies/secret/add/"


def add(admin_client, repo, name="DEPLOY_KEY", value=VALUE, environment="dev"):
    return admin_client.post(
        ADD,
        {"repository": repo.pk, "environment": environment, "name": name, "value": value},
    )


def test_it_writes_a_secret_encrypted_and_audits_its_name(admin_client, repo):
    resp = add(admin_client, repo)
    assert resp.status_code == 302, resp.content
    secret = Secret.objects.get()
    assert VALUE.encode() not in bytes(secret.ciphertext)
    assert secrets.decrypt(secret.ciphertext) == VALUE
    event = AuditEvent.objects.get(action="secret.write")
    assert event.target == "DEPLOY_KEY" and event.actor == "user:admin"
    assert VALUE not in str(event.details)


def test_it_never_displays_a_value_back(admin_client, repo):
    add(admin_client, repo)
    secret = Secret.objects.get()
    pages = [
        admin_client.get("/admin/policies/secret/"),
        admin_client.get(f"/admin/policies/secret/{secret.pk}/change/"),
        add(admin_client, repo),  # the same name again: the form comes back with an error
    ]
    assert pages[2].status_code == 200 and b"already exists" in pages[2].content
    token = secrets._fernet().encrypt(b"x")[:5]  # the ciphertext's version prefix
    for page in pages:
        html = page.content.decode()
        assert VALUE not in html and "DEPLOY_KEY" in html
        assert bytes(secret.ciphertext).decode() not in html and token.decode() not in html
    assert 'type="password"' in pages[1].content.decode()


def test_it_keeps_the_value_when_the_field_is_left_empty(admin_client, repo):
    add(admin_client, repo)
    secret = Secret.objects.get()
    change = f"/admin/policies/secret/{secret.pk}/change/"
    assert admin_client.post(change, {"value": ""}).status_code == 302
    assert secrets.decrypt(Secret.objects.get().ciphertext) == VALUE
    assert admin_client.post(change, {"value": "rotated"}).status_code == 302
    assert secrets.decrypt(Secret.objects.get().ciphertext) == "rotated"
    assert AuditEvent.objects.filter(action="secret.write").count() == 2


def test_it_requires_a_value_for_a_new_secret(admin_client, repo):
    resp = add(admin_client, repo, value="")
    assert resp.status_code == 200 and b"A new secret needs a value" in resp.content
    assert Secret.objects.count() == 0


def test_it_scopes_secrets_per_environment(admin_client, repo):
    add(admin_client, repo, environment="dev", value="dev-value")
    add(admin_client, repo, environment="prod", value="prod-value")
    values = {s.environment: secrets.decrypt(s.ciphertext) for s in Secret.objects.all()}
    assert values == {"dev": "dev-value", "prod": "prod-value"}


def test_it_cannot_decrypt_with_another_key(repo, settings):
    secret = secrets.set_secret(repo, "K", VALUE)
    settings.DELTACI_SECRETS_KEY = Fernet.generate_key().decode()
    with pytest.raises(ValueError, match="cannot be decrypted"):
        secrets.decrypt(secret.ciphertext)
