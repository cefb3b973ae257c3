"""Delta CI reference runner: speaks the runner protocol (docs/protocol.md) over HTTP."""

__version__ = "0.1.0"
# The runner protocol version this runner speaks, sent as X-Delta-Protocol (a control
# plane accepts its own version and the one before).
PROTOCOL_VERSION = 1
