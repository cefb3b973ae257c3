"""Which repository URLs the control plane fetches: `https://`, `ssh://` and scp-like
`user@host:path`, plus local paths (and `file://`) in dev only. Anything else — `http://`,
`git://`, and above all git's `<helper>::<address>` forms (`fd::17` waits forever on a file
descriptor, `ext::` runs a command) — is refused when a repository is saved and again
before every fetch. git is also told which transports it may use (ALLOWED_PROTOCOLS)."""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_LENGTH = 500
_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# [user@]host:path, where the host is a name or address (never an option).
_SCP = re.compile(
    r"^(?:[A-Za-z0-9._~-]+@)?(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):(?![:-])"
)
_HOST = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])$")


def local_allowed() -> bool:
    return bool(settings.DELTACI_ENV == "dev")


def allowed_protocols() -> str:
    """GIT_ALLOW_PROTOCOL for every git command on a mirror."""
    return "https:ssh:file" if local_allowed() else "https:ssh"


def problem(url: str, *, allow_local: bool | None = None) -> str | None:
    """Why `url` may not be fetched, or None."""
    allow_local = local_allowed() if allow_local is None else allow_local
    if not isinstance(url, str) or not url or len(url) > MAX_LENGTH:
        return f"a repository URL is 1-{MAX_LENGTH} characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or url.startswith("-"):
        return "a repository URL has no spaces, control characters or leading '-'"
    if _HELPER.match(url):
        return "git remote helpers (<transport>::<address>) are not allowed"
    scheme = _SCHEME.match(url)
    if scheme:
        name = scheme.group(1).lower()
        if name == "file":
            return None if allow_local else "local repositories are allowed only in dev"
        if name not in ("https", "ssh"):
            return f"{name}:// is not allowed: use https://, ssh:// or user@host:path"
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        if not host or not _HOST.match(host if ":" not in host else f"[{host}]"):
            return "the URL names no valid host"
        return None
    if url.startswith("/"):
        return None if allow_local else "local repositories are allowed only in dev"
    if _SCP.match(url):
        return None
    return "use https://…, ssh://…, user@host:path" + (
        " or an absolute path" if allow_local else ""
    )


def check(url: str, *, allow_local: bool | None = None) -> None:
    """ValueError with the reason when `url` may not be fetched."""
    reason = problem(url, allow_local=allow_local)
    if reason:
        raise ValueError(f"repository URL refused: {reason}")


def validate(url: str) -> None:
    """The model field's validator (admin forms, full_clean)."""
    reason = problem(url)
    if reason:
        raise ValidationError(reason)
