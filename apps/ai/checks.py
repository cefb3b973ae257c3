"""Start-up check: a configured provider needs a model, and `prod` only speaks https."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def check_ai_settings(app_configs, **kwargs) -> list[Error]:
    url = settings.DELTACI_AI_URL
    if not url:
        return []
    errors = []
    if not url.startswith(("https://", "http://")):
        errors.append(Error("DELTACI_AI_URL must be an http(s) URL", id="deltaci.E030"))
    if settings.DELTACI_ENV == "prod" and not url.startswith("https://"):
        errors.append(
            Error("DELTACI_ENV=prod refuses a DELTACI_AI_URL that is not https", id="deltaci.E031")
        )
    if not settings.DELTACI_AI_MODEL:
        errors.append(Error("DELTACI_AI_URL is set but DELTACI_AI_MODEL is not", id="deltaci.E032"))
    return errors
