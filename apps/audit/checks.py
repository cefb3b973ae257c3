"""Start-up checks (STYLE habit 9): `prod` and `staging` refuse insecure defaults, and the
lease TTL must leave room for three missed heartbeats."""

from django.conf import settings
from django.core.checks import Error, Tags, register

from deltaci.settings import INSECURE_SECRET_KEY


@register(Tags.security, deploy=False)
def check_settings(app_configs, **kwargs) -> list[Error]:
    errors: list[Error] = []
    ttl = settings.DELTACI_LEASE_TTL_SECONDS
    hb = settings.DELTACI_HEARTBEAT_INTERVAL_SECONDS
    if hb <= 0 or ttl < 3 * hb:
        errors.append(
            Error(
                f"DELTACI_LEASE_TTL_SECONDS ({ttl}) must be at least 3 x "
                f"DELTACI_HEARTBEAT_INTERVAL_SECONDS ({hb})",
                id="deltaci.E001",
            )
        )
    errors.extend(insecure_settings())
    return errors


def insecure_settings() -> list[Error]:
    """What `staging` and `prod` refuse to start with (nothing in `dev`). Only `prod`
    insists on HTTPS: staging may be a plain-HTTP trial."""
    env = settings.DELTACI_ENV
    if env == "dev":
        return []
    problems = []
    if settings.DEBUG:
        problems.append(("DEBUG is on; set DEBUG=false", "deltaci.E010"))
    if settings.SECRET_KEY == INSECURE_SECRET_KEY or len(settings.SECRET_KEY) < 32:
        problems.append(("SECRET_KEY is the default or shorter than 32 characters", "deltaci.E011"))
    if not settings.GITHUB_WEBHOOK_SECRET:
        problems.append(("GITHUB_WEBHOOK_SECRET is not set", "deltaci.E012"))
    if not settings.DELTACI_SECRETS_KEY:
        problems.append(("DELTACI_SECRETS_KEY (Fernet key for secrets) is not set", "deltaci.E013"))
    if "*" in settings.ALLOWED_HOSTS:
        problems.append(("ALLOWED_HOSTS must not contain '*'", "deltaci.E014"))
    if env == "prod":
        if not settings.DELTACI_PUBLIC_URL.lower().startswith("https://"):
            problems.append(("DELTACI_PUBLIC_URL must be an https:// URL", "deltaci.E015"))
        if not (settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE):
            problems.append(
                ("SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE must be true", "deltaci.E016")
            )
    return [Error(f"DELTACI_ENV={env} refuses to start: {msg}", id=code) for msg, code in problems]
