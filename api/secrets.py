"""Session ids, CSRF and API tokens: random, and stored only as a SHA-256 (they are high-entropy, so a
plain hash is enough; passwords, being guessable, get argon2 instead)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "rgt_"  # noqa: S105 - a prefix, not a secret: recognisable in a leaked file or a secret scanner's rules


def new_session_id() -> str:
    """A fresh session id (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    """A fresh CSRF synchronizer token."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    """A fresh API token, shown once to its owner."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 (hex) a session id or token is stored as."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode(), b.encode())
