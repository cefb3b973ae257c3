"""GET /metrics in Prometheus' text format, for a scraper that presents the metrics
token (`Authorization: Bearer …`) or connects from a network the operator allowed
explicitly (none by default, not even loopback). The client address
is REMOTE_ADDR (the peer of this process), never a forwarded header a client can forge:
behind a proxy or an Ingress use the token."""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lib.api_errors import error_json
from lib.tokens import bearer_token, same_secret


@lru_cache(maxsize=8)
def allowed_networks(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parsed CIDRs; entries that do not parse are skipped here and reported by the
    ops.E001 system check at start-up."""
    nets = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            continue
    return tuple(nets)


def _token_ok(request: HttpRequest) -> bool:
    offered = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
    return same_secret(offered, settings.DELTACI_METRICS_TOKEN)


def _network_ok(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    nets = allowed_networks(tuple(settings.DELTACI_METRICS_ALLOWED_NETWORKS))
    return any(address.version == net.version and address in net for net in nets)


def may_scrape(request: HttpRequest) -> bool:
    return _token_ok(request) or _network_ok(request)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        return error_json("FORBIDDEN", "metrics need the metrics token or an allowed network")
    from apps.ops.metrics import scrape_registry

    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
