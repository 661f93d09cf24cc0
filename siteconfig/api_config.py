"""The site file's `api:` section: where the web API listens, TLS, sessions, login throttling and the
password rules of its local users. Every key is optional, so a site file without `api:` stays valid."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from devices.yamlload import issues_error
from siteconfig.config_types import Port, StrictModel

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """True for a loopback address or name (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoginThrottle(StrictModel):
    """How many wrong passwords in a row lock an account, and for how long; and how many failed logins
    one client address may make in a sliding window before it gets 429 (guessing across many accounts)."""

    max_failures: int = Field(5, ge=1, le=100, description="Wrong passwords in a row before the lock-out.")
    lockout_minutes: float = Field(15.0, gt=0, le=24 * 60, description="Minutes an account stays locked.")
    address_failures: int = Field(
        20, ge=1, le=10_000, description="Failed logins from one client address within the window → 429."
    )
    address_window_minutes: float = Field(
        10.0, gt=0, le=24 * 60, description="The sliding window of address_failures, in minutes."
    )
    address_memory: int = Field(
        10_000,
        ge=10,
        le=1_000_000,
        description="Client addresses remembered at most (the least recently failing is forgotten first).",
    )


class PasswordRules(StrictModel):
    """What a new password must hold; the default is the exchange's CC-18000 minimum (at least 6
    characters, letters mixed with digits or symbols)."""

    min_length: int = Field(6, ge=6, le=128, description="Fewest characters (never below 6, CC-18000).")
    min_classes: int = Field(
        2, ge=2, le=3, description="Character classes to mix: letters, digits, symbols (2 or 3)."
    )
    require_letter: bool = Field(True, description="One of the classes must be letters.")


class ApiConfig(StrictModel):
    """The web API and status pages (`roomguard api SITE`)."""

    enabled: bool = Field(
        False,
        description="`roomguard run` serves the API too, and `roomguard doctor` checks it (/healthz).",
    )
    host: str = Field("127.0.0.1", min_length=1, description="Address to listen on (loopback by default).")
    port: Port = Field(8470, description="TCP port.")
    tls_cert: Path | None = Field(None, description="PEM certificate (chain) file; HTTPS when given.")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    session_hours: float = Field(
        8.0, gt=0, le=24 * 30, description="Hours a browser login lasts (one working shift by default)."
    )
    cookie_secure: bool | None = Field(
        None,
        description="Send the session cookie over HTTPS only; default true unless the host is loopback.",
    )
    login: LoginThrottle = Field(default_factory=LoginThrottle, description="Login throttling.")
    passwords: PasswordRules = Field(default_factory=PasswordRules, description="Password rules.")
    metrics_public: bool = Field(
        False,
        description="Serve /metrics without a login (a Prometheus on a trusted network); by default it "
        "needs a token with status.read (Prometheus `authorization: credentials_file:`).",
    )
    page_refresh_s: int = Field(
        30, ge=5, le=3600, description="Seconds between reloads of the status page and the door display."
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            raise issues_error(
                [{"loc": (missing,), "msg": "tls_cert and tls_key go together: give both or neither"}]
            )
        return self

    @property
    def secure_cookies(self) -> bool:
        """Whether the session cookie carries `Secure`: as configured, else unless on loopback."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return not is_loopback(self.host)
