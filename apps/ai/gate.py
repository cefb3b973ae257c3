"""When a request may be made at all: the deployment's switch, the daily limit and the
circuit breaker, all read from the analyses table so every worker agrees."""

from datetime import datetime, timedelta

from django.conf import settings

from apps.ai.models import CALLED, PROVIDER_FAILURES, FailureAnalysis
from apps.ai.provider import ProviderConfig


def provider_config() -> ProviderConfig | None:
    """None when no provider is configured: then the feature does not exist."""
    url = settings.DELTACI_AI_URL
    if not url:
        return None
    return ProviderConfig(
        url=url,
        api_key=settings.DELTACI_AI_API_KEY,
        model=settings.DELTACI_AI_MODEL,
        timeout=float(settings.DELTACI_AI_TIMEOUT_SECONDS),
    )


def https_required(environment: str) -> bool:
    return settings.DELTACI_ENV == "prod" or environment == "prod"


def breaker_open(now: datetime) -> bool:
    """Open when the last N requests that reached the provider all failed and the latest
    is younger than the cool-down; after it, one request is let through to probe."""
    n = max(1, settings.DELTACI_AI_BREAKER_FAILURES)
    recent = list(
        FailureAnalysis.objects.filter(outcome__in=CALLED)
        .order_by("-created_at", "-id")
        .values_list("outcome", "created_at")[:n]
    )
    if len(recent) < n or any(outcome not in PROVIDER_FAILURES for outcome, _ in recent):
        return False
    return now - recent[0][1] < timedelta(seconds=settings.DELTACI_AI_BREAKER_SECONDS)


def daily_limit_reached(now: datetime) -> bool:
    since = now - timedelta(days=1)
    used = FailureAnalysis.objects.filter(outcome__in=CALLED, created_at__gte=since).count()
    return used >= settings.DELTACI_AI_DAILY_REQUEST_LIMIT
