"""Runner protocol versions, so a control plane upgrade never strands its runners.

A runner names the protocol version it speaks in `X-Delta-Protocol` on every request;
runners from before the header existed send none and speak version 1. A control plane
accepts every version from OLDEST_SUPPORTED to PROTOCOL_VERSION — by rule the current one
and the one before — and names its own in the same header of every answer. Within a
version messages only grow optional fields (unknown fields are ignored), so an older
runner's messages stay valid. Outside the range the answer is `426 UPGRADE_REQUIRED`
saying which side to upgrade, before any authentication or state change.
"""

import re

from lib.api_errors import ApiError

PROTOCOL_VERSION = 1
OLDEST_SUPPORTED = 1
HEADER = "X-Delta-Protocol"
_META = "HTTP_X_DELTA_PROTOCOL"
_NUMBER = re.compile(r"^[0-9]{1,4}$")


def negotiate(announced: str | None) -> int:
    """The version this request speaks, or ApiError: 400 for a malformed header, 426
    for a version this control plane does not speak."""
    if announced is None:
        version = 1  # runners that predate the header
    elif _NUMBER.match(announced):
        version = int(announced)
    else:
        raise ApiError("INVALID_REQUEST", f"{HEADER} must be a protocol version number")
    supported = {"oldest": OLDEST_SUPPORTED, "newest": PROTOCOL_VERSION, "announced": version}
    if version < OLDEST_SUPPORTED:
        raise ApiError(
            "UPGRADE_REQUIRED",
            f"runner protocol {version} is no longer supported (this control plane speaks "
            f"{OLDEST_SUPPORTED} to {PROTOCOL_VERSION}): upgrade the runner",
            supported,
        )
    if version > PROTOCOL_VERSION:
        raise ApiError(
            "UPGRADE_REQUIRED",
            f"runner protocol {version} is newer than this control plane speaks "
            f"({OLDEST_SUPPORTED} to {PROTOCOL_VERSION}): upgrade the control plane "
            f"before its runners",
            supported,
        )
    return version


class ProtocolVersioned:
    """For runner protocol views: the version is checked first, and every answer, errors
    included, names the control plane's own."""

    def initial(self, request, *args, **kwargs):
        request.protocol_version = negotiate(request.META.get(_META))
        super().initial(request, *args, **kwargs)  # type: ignore[misc]  # a mixin of APIView

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response[HEADER] = str(PROTOCOL_VERSION)
        return response
