"""What guards the login itself: the per-address throttle (api/throttle.py) and the login form's CSRF.

Login CSRF (OWASP CSRF Prevention Cheat Sheet, "Login CSRF"): before any session exists, another site
could post its own user name and password to /login and log the victim's browser into the attacker's
account. GET /login therefore sets a pre-session token in a cookie and in the form (signed double-submit:
the token is a random value with this app's HMAC of it); POST /login needs both, equal and signed. The
key is made when the app starts, so a form opened before a restart asks for a reload. The JSON login
(`POST /api/v1/auth/login`) is for scripts and stays as it is: a browser cannot send JSON to another
origin without CORS, which this app never allows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastapi import Request

from api import secrets as sec
from api.throttle import AddressThrottle
from siteconfig.api_config import LoginThrottle

LOGIN_CSRF_COOKIE = "rg_login_csrf"
LOGIN_CSRF_FIELD = "login_csrf"


class LoginGuard:
    """The app's login throttle per client address and its login-CSRF signing key."""

    def __init__(self, policy: LoginThrottle, key: bytes | None = None) -> None:
        self.addresses = AddressThrottle.of(policy)
        self._key = key if key is not None else secrets.token_bytes(32)

    def _sign(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def new_form_token(self) -> str:
        """A fresh pre-session token for the login form and its cookie."""
        value = secrets.token_urlsafe(18)
        return f"{value}.{self._sign(value)}"

    def signed(self, token: str | None) -> bool:
        """True when `token` is one this app made."""
        if not token:
            return False
        value, _, mac = token.partition(".")
        return bool(value) and sec.same(mac, self._sign(value))

    def form_token_ok(self, cookie: str | None, field: str | None) -> bool:
        """The login form's check: cookie and form field present, equal, and signed by this app."""
        return bool(cookie) and bool(field) and sec.same(cookie or "", field or "") and self.signed(cookie)


def login_guard(request: Request) -> LoginGuard:
    """The app's login guard (`app.state.login_guard`, set by create_app)."""
    guard = request.app.state.login_guard
    assert isinstance(guard, LoginGuard)
    return guard
