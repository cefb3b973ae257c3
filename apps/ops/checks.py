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
    token = settings.DELTACI_METRICS_TOKEN
    if token and len(token) < 24:
        errors.append(Error("DELTACI_METRICS_TOKEN must be at least 24 characters", id="ops.E002"))
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path) and not os.access(path, os.W_OK):
        errors.append(Error(f"PROMETHEUS_MULTIPROC_DIR {path} is not writable", id="ops.E003"))
    return errors
