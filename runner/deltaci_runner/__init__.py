"""Delta CI reference runner: speaks the runner protocol (docs/protocol.md) over HTTP."""

__version__ = "0.1.0"
