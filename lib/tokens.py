"""Secrets that act as capabilities (registration and runner tokens, lease ids, upload
signatures). They are random (256 bits), stored only as SHA-256 and compared in
constant time; logs carry only a short prefix of the hash."""

import hashlib
import hmac
import secrets

PREFIX_LEN = 12


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def short_hash(token: str) -> str:
    """What logs and audit events may carry instead of a token."""
    return hash_token(token)[:PREFIX_LEN]


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def same_secret(offered: str | None, expected: str) -> bool:
    """Does a presented secret equal a configured one? Constant time (hashes of equal
    length are compared); an empty configuration matches nothing."""
    if not offered or not expected:
        return False
    return hmac.compare_digest(hash_token(offered), hash_token(expected))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > 512:
        return None
    return value
