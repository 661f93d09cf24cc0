"""Apprise channel: one Apprise URL (mailto, tgram, slack, msteams, ntfy, line, json, ...).

Apprise is synchronous, so each delivery runs in a worker thread. The URL holds the service's secret
(token, password, webhook path), so it is never shown: errors name only its scheme, and a logging filter
on Apprise's logger and urllib3's request log removes every part of it from their records (Apprise logs
service URLs and, at debug level, the URLs it requests; urllib3 logs request lines). Records of those
loggers below WARNING are dropped as well.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import apprise

from alerts.notify.base import (
    DeliveryError,
    Notification,
    SecretRedactingFilter,
    bilingual_body,
    bilingual_subject,
    url_secrets,
)

_LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
# Apprise's own logger (every plugin logs through it): redacted, and quiet below WARNING.
_APPRISE_FILTER = SecretRedactingFilter(min_level=logging.WARNING)
# The request-line loggers of the HTTP stack Apprise uses: redacted only (other users of urllib3 in the
# process keep their debug logs).
_HTTP_FILTER = SecretRedactingFilter()
_HTTP_LOGGERS = ("urllib3.connectionpool", "requests")
_INSTALLED = False


def _protect(url: str) -> None:
    """Redact every part of `url` from the loggers that may print it (installed once)."""
    global _INSTALLED
    secrets = url_secrets(url)
    _APPRISE_FILTER.add(secrets)
    _HTTP_FILTER.add(secrets)
    if not _INSTALLED:
        logging.getLogger("apprise").addFilter(_APPRISE_FILTER)
        for name in _HTTP_LOGGERS:
            logging.getLogger(name).addFilter(_HTTP_FILTER)
        _INSTALLED = True


_NOTIFY_TYPE = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "critical": apprise.NotifyType.FAILURE,
}


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://" if sep and scheme.isascii() and len(scheme) <= 20 else "(no scheme)"


class AppriseChannel:
    """Delivers the texts through one Apprise URL: title `zh-TW / English` subject, body the zh-TW body,
    a blank line and the English body. `url` is the resolved secret (the caller reads it from a
    SecretRef); a URL Apprise cannot load is refused here (ValueError naming only the scheme).

    Apprise reports a failure only as False (no status code), so every failed delivery is retryable.
    """

    def __init__(self, name: str, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        _protect(url)  # before Apprise first sees the URL: it may log it while loading it
        self.name = name
        self.scheme = _scheme(url)
        self.timeout_s = timeout_s
        self._url = url
        if apprise.Apprise.instantiate(url) is None:
            raise ValueError(f"apprise {name}: Apprise cannot load this {self.scheme} URL (not shown)")

    def __repr__(self) -> str:
        return f"AppriseChannel({self.name!r}, {self.scheme})"

    async def send(self, notification: Notification) -> None:
        """Deliver once; DeliveryError (retryable) if Apprise reports failure or takes too long."""
        title, body = bilingual_subject(notification), bilingual_body(notification)
        notify_type = (
            apprise.NotifyType.SUCCESS
            if notification.kind == "resolved"
            else _NOTIFY_TYPE.get(notification.severity, apprise.NotifyType.INFO)
        )
        where = f"apprise {self.name} ({self.scheme})"
        try:
            async with asyncio.timeout(self.timeout_s):
                ok, reasons = await asyncio.to_thread(self._notify, title, body, notify_type)
        except TimeoutError:
            raise DeliveryError(f"{where}: no result within {self.timeout_s:g} s", retryable=True) from None
        except Exception as exc:
            raise DeliveryError(f"{where}: Apprise raised {type(exc).__name__}", retryable=True) from None
        if not ok:
            why = f": {'; '.join(reasons)}" if reasons else ""
            raise DeliveryError(_APPRISE_FILTER.redact(f"{where}: delivery failed{why}"), retryable=True)
        _LOG.debug("%s: delivered %s", where, notification.key)

    def _notify(self, title: str, body: str, notify_type: Any) -> tuple[bool, list[str]]:
        """In a worker thread: a fresh Apprise object (they are not shared across threads) sends once."""
        apobj = apprise.Apprise()
        if not apobj.add(self._url):
            return False, ["URL could not be loaded"]
        result = apobj.notify(body=body, title=title, notify_type=notify_type, body_format="text")
        reasons: list[str] = []
        logs = getattr(result, "logs", None)  # Apprise 2: the warnings of the call, with the result
        if callable(logs):
            try:
                entries = list(logs())
            except Exception:  # only an explanation: never let it hide the outcome
                entries = []
            for entry in entries[-3:]:
                text = " ".join(str(getattr(entry, "message", entry)).split())
                reasons.append(_APPRISE_FILTER.redact(text)[:200])
        close = getattr(result, "close", None)
        if callable(close):
            close()
        return bool(result), reasons


__all__ = ["AppriseChannel"]
