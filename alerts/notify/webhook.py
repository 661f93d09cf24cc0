"""Webhook channel: POSTs the notification's JSON payload, signed with HMAC-SHA256 (docs/alerts.md).

Signature scheme `v1` (the receiver's side is `verify_signature`):

    X-Roomguard-Timestamp: <unix seconds, integer>
    X-Roomguard-Signature: v1=<hex of HMAC-SHA256(key, "<timestamp>." + body)>

`body` is the exact bytes of the request body (compact UTF-8 JSON). Signing the timestamp with the
body lets the receiver refuse old deliveries (a replay window), and the `v1=` prefix leaves room for a
new scheme beside the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from alerts.notify.base import DeliveryError, Notification, payload_json

_LOG = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Roomguard-Signature"
TIMESTAMP_HEADER = "X-Roomguard-Timestamp"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300
DEFAULT_TIMEOUT_S = 10.0
# Statuses worth trying again: the receiver timed out, is rate limiting, or failed on its side.
RETRYABLE_4XX = frozenset({408, 425, 429})


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def sign(key: str | bytes, timestamp: int, body: bytes) -> str:
    """The `X-Roomguard-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(_key_bytes(key), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(
    key: str | bytes,
    timestamp: str | int,
    body: bytes,
    signature: str,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """True if `signature` (the X-Roomguard-Signature header) signs `body` with `timestamp` (the
    X-Roomguard-Timestamp header) under `key`, and `timestamp` is within `tolerance_s` of `now`.

    The comparison is constant-time. The header may list several signatures separated by commas (a
    sender rotating keys); one valid `v1` entry is enough. A receiver that must never act twice on a
    delivery also remembers what it accepted within the window (docs/alerts.md).
    """
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    expected = sign(key, ts, body).encode("ascii")
    ok = False
    for entry in signature.split(","):
        given = entry.strip().encode("utf-8", "replace")
        # No early exit: every entry is compared, so timing says nothing about which one matched.
        ok |= hmac.compare_digest(expected, given)
    return ok


def _where(url: str) -> str:
    """`scheme://host:port` of `url`: its path, query and userinfo may hold a token and are never shown."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


class WebhookChannel:
    """POSTs `notification.payload` (roomguard.alert/1) as JSON with the v1 HMAC signature.

    2xx is delivered. 408, 425, 429, 5xx, timeouts and connection or TLS handshake failures are
    retryable; a redirect or any other 4xx is not (the URL or the key is wrong: trying again changes
    nothing). The TLS certificate is verified unless `verify_tls` is False; `ca_file` trusts a private CA.
    The URL may hold a token: errors and logs show only its scheme, host and port.
    """

    def __init__(
        self,
        name: str,
        url: str,
        key: str | bytes,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        verify_tls: bool = True,
        ca_file: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook {name}: the URL must be http:// or https:// with a host")
        if not _key_bytes(key):
            raise ValueError(f"webhook {name}: the signing key is empty")
        if timeout_s <= 0:
            raise ValueError(f"webhook {name}: timeout_s must be positive")
        self.name = name
        self._url = url
        self._key = _key_bytes(key)
        self.timeout_s = timeout_s
        self.verify_tls = verify_tls
        self.ca_file = ca_file
        self._clock = clock
        self.where = _where(url)

    def __repr__(self) -> str:
        return f"WebhookChannel({self.name!r}, {self.where}, verify_tls={self.verify_tls})"

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.verify_tls:
            return False
        if self.ca_file:
            return ssl.create_default_context(cafile=self.ca_file)
        return True  # aiohttp's default: verified against the system CA store

    async def send(self, notification: Notification) -> None:
        """POST the payload once; DeliveryError says whether to try again."""
        try:
            body = payload_json(notification.payload)
        except (TypeError, ValueError) as exc:
            raise DeliveryError(
                f"webhook {self.name}: payload is not JSON ({type(exc).__name__}: {exc})", retryable=False
            ) from None
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "roomguard-webhook/1",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._key, timestamp, body),
        }
        where = f"webhook {self.name} ({self.where})"
        try:
            ssl_arg = self._ssl()
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"{where}: cannot load ca_file: {exc}", retryable=False) from None
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    self._url, data=body, headers=headers, ssl=ssl_arg, allow_redirects=False
                ) as resp,
            ):
                status, reason = resp.status, resp.reason or ""
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            raise DeliveryError(f"{where}: no answer within {self.timeout_s:g} s", retryable=True) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            # The receiver's certificate is not trusted: a configuration matter, not a passing fault.
            raise DeliveryError(
                f"{where}: TLS certificate not trusted ({exc.certificate_error})", retryable=False
            ) from None
        except aiohttp.ClientConnectorError as exc:
            why = exc.os_error.strerror or type(exc.os_error).__name__
            raise DeliveryError(f"{where}: cannot connect ({why})", retryable=True) from None
        except aiohttp.InvalidURL:
            raise DeliveryError(f"{where}: invalid URL", retryable=False) from None
        except aiohttp.ClientError as exc:
            # Disconnected mid-request, malformed answer, TLS failure: the network's or the receiver's
            # passing trouble. Only the class is shown: aiohttp's texts may repeat the full URL.
            raise DeliveryError(f"{where}: request failed ({type(exc).__name__})", retryable=True) from None
        if 200 <= status < 300:
            _LOG.debug("%s: delivered %s (%d)", where, notification.key, status)
            return
        detail = f"{where}: HTTP {status} {reason}".rstrip()
        if status >= 500 or status in RETRYABLE_4XX:
            if retry_after:
                detail += f" (Retry-After: {retry_after[:40]})"
            raise DeliveryError(detail, retryable=True)
        if 300 <= status < 400:
            detail += " (redirects are not followed: configure the final URL)"
        raise DeliveryError(detail, retryable=False)


__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookChannel",
    "sign",
    "verify_signature",
]
