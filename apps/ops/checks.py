"""Start-up checks for operations settings (STYLE habit 9): a metrics allow-list that
does not parse must fail loudly, not silently lock the scraper out (or let it in)."""

import ipaddress
import os

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def check_metrics_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    for cidr in settings.DELTACI_METRICS_ALLOWED_NETWORKS:
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"DELTACI_METRICS_ALLOWED_NETWORKS: {cidr!r} is not an IP network (CIDR)",
                    id="ops.E001",
                )
            )
    for name, check_id in (
        ("DELTACI_METRICS_TOKEN", "ops.E002"),
        ("DELTACI_QUEUE_TOKEN", "ops.E004"),
    ):
        token = getattr(settings, name)
        if token and len(token) < 24:
            errors.append(Error(f"{name} must be at least 24 characters", id=check_id))
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path) and not os.access(path, os.W_OK):
        errors.append(Error(f"PROMETHEUS_MULTIPROC_DIR {path} is not writable", id="ops.E003"))
    return errors


@register()
def check_broker_settings(app_configs, **kwargs) -> list[Error]:
    """A visibility timeout shorter than a task's run or retry wait makes Redis deliver
    the same task to a second worker while the first still holds it."""
    from apps.runs.tasks import plan_run
    from apps.vcs.tasks import MAX_BACKOFF

    floor = max(plan_run.time_limit or 0, MAX_BACKOFF)
    timeout = settings.DELTACI_BROKER_VISIBILITY_TIMEOUT_SECONDS
    if timeout <= floor:
        return [
            Error(
                f"DELTACI_BROKER_VISIBILITY_TIMEOUT_SECONDS must exceed {floor} (the longest "
                "task time limit and retry back-off)",
                id="ops.E004",
            )
        ]
    return []
