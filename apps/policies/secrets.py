"""Secrets at rest: Fernet (AES-128-CBC + HMAC) with a key from the environment. Values
are written in admin, never displayed back, and read only when a lease is granted."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from apps.audit.actions import record
from apps.policies.models import Secret
from planner.config import ENV_NAME

SECRET_NAME = ENV_NAME  # a job names its secrets in ci.ai.yaml under this same rule


def _fernet() -> Fernet:
    key = settings.DELTACI_SECRETS_KEY
    if not key:  # dev only: prod refuses to start without DELTACI_SECRETS_KEY
        key = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest())
    return Fernet(key)


def encrypt(value: str) -> bytes:
    return _fernet().encrypt(value.encode())


def decrypt(ciphertext: bytes | memoryview) -> str:
    """A BinaryField may read back as a memoryview (bytes() below takes either)."""
    try:
        return _fernet().decrypt(bytes(ciphertext)).decode()
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted with the configured key") from exc


def set_secret(
    repository, name: str, value: str, *, environment: str | None = None, actor: str = "system"
):
    if not SECRET_NAME.match(name or ""):
        raise ValueError(f"secret name {name!r} is not an environment variable name")
    env = environment or repository.environment
    secret, _ = Secret.objects.update_or_create(
        repository=repository, environment=env, name=name, defaults={"ciphertext": encrypt(value)}
    )
    record("secret.write", actor=actor, repository=repository, target=name, environment=env)
    return secret


def secrets_for_job(run, names: list[str], *, actor: str) -> dict[str, str]:
    """The named secrets of the run's repository and environment, never for a fork run.
    Each delivery is audited by name only."""
    if not names or run.is_fork:
        if names and run.is_fork:
            record(
                "secret.withheld",
                actor=actor,
                run=run,
                names=sorted(names),
                why=run.untrusted_reason or "fork pull request",
            )
        return {}
    repo = run.repository
    rows = Secret.objects.filter(repository=repo, environment=repo.environment, name__in=names)
    values = {s.name: decrypt(s.ciphertext) for s in rows}
    record(
        "secret.read",
        actor=actor,
        run=run,
        names=sorted(values),
        missing=sorted(set(names) - set(values)),
    )
    return values
