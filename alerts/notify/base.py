"""What every notification channel receives and how it reports a failed delivery."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote

NotificationKind = Literal["firing", "resolved", "escalation", "acknowledged", "summary", "test"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message about one alert (or a summary of several), in Traditional Chinese and English.

    `payload` is the documented `roomguard.alert/1` JSON object (docs/mqtt.md); channels that carry
    structured data (webhook, MQTT) send it as is, the others send the texts.
    """

    key: str  # dedup key of the alert (or of the summary), stable across retries
    kind: NotificationKind
    severity: Literal["info", "warning", "critical"]
    subject_zh: str
    subject_en: str
    body_zh: str
    body_en: str
    payload: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """A channel could not deliver; `retryable` says whether trying again later can help."""

    def __init__(self, detail: str, *, retryable: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


class Channel(Protocol):
    """A place notifications go (webhook, SMTP, Apprise URL, MQTT topic)."""

    name: str

    async def send(self, notification: Notification) -> None:
        """Deliver one notification or raise DeliveryError (never log or raise a secret)."""
        ...


# --- helpers shared by the channels ---------------------------------------------------------------------

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


def payload_json(payload: dict[str, Any]) -> bytes:
    """The payload as sent on the wire (webhook body, MQTT message): compact UTF-8 JSON, Chinese kept
    readable (docs/mqtt.md "Payloads"); NaN and infinities are refused (not JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def bilingual_subject(notification: Notification) -> str:
    """`zh-TW / English` subject line (just one of them when they are the same)."""
    zh, en = notification.subject_zh.strip(), notification.subject_en.strip()
    if not zh or zh == en:
        return en
    return f"{zh} / {en}" if en else zh


def bilingual_body(notification: Notification) -> str:
    """The zh-TW body, a blank line, then the English body."""
    zh, en = notification.body_zh.strip("\n"), notification.body_en.strip("\n")
    return f"{zh}\n\n{en}" if zh and en and zh != en else (zh or en)


REDACTED = "[redacted]"
# Fragments shorter than this are not redacted from free text (redacting "ab" would garble every
# message); passwords and user names from a URL's userinfo are redacted from 2 characters on.
_MIN_FRAGMENT = 6


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced (longest first, so a secret that contains
    another is removed whole)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def url_secrets(url: str) -> set[str]:
    """The parts of a channel URL that may be secret, in the forms a library may log them.

    Which part of a URL is a secret depends on the service (Telegram's bot token is the host part,
    Slack's tokens are path segments, ntfy and e-mail put a password in the userinfo, others use query
    values), so every part is treated as one: the whole URL, the userinfo, each host and path segment and
    each query value of at least 6 characters, raw and percent-decoded. Host names in log lines are
    redacted too; that is the price of not knowing the service.
    """
    out: set[str] = set()
    for form in {url, unquote(url)}:
        out.add(form)
        scheme, sep, rest = form.partition("://")
        if not sep:
            rest = scheme
        netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
        userinfo, at, _ = netloc.rpartition("@")  # a password may hold an unescaped "@"
        if at:
            user, _, password = userinfo.partition(":")
            out.update(p for p in (userinfo, user, password) if len(p) >= 2)
        before_query, _, query = rest.partition("?")
        out.update(p for p in re.split(r"[/:@,;\s]+", before_query) if len(p) >= _MIN_FRAGMENT)
        for pair in re.split(r"[&;]", query):
            value = pair.partition("=")[2]
            out.update(p for p in re.split(r"[,\s]+", value) if len(p) >= _MIN_FRAGMENT)
        for token in list(out):
            out.add(quote(token, safe=""))
    return {s for s in out if s}


class SecretRedactingFilter(logging.Filter):
    """A logging filter that removes registered secrets from records of the loggers it is attached to
    (message, arguments and any exception text), and drops records below `min_level`.

    Attach it to a third-party logger that may print a secret (Apprise logs service URLs and the
    URLs it requests; urllib3 logs request lines, Telegram's bot token among them).
    """

    def __init__(self, min_level: int = logging.NOTSET) -> None:
        super().__init__()
        self.min_level = min_level
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        """Redact these from now on as well."""
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def redact(self, text: str) -> str:
        """`text` without any registered secret."""
        with self._lock:
            secrets = tuple(self._secrets)
        return redact(text, secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return False
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep only its template
            message = str(record.msg)
        record.msg, record.args = self.redact(message), None
        if record.exc_info is not None:
            # A traceback of a requests/urllib3 error repeats the URL: keep the exception's type only.
            exc = record.exc_info[1]
            record.msg += f" ({type(exc).__name__})" if exc is not None else ""
            record.exc_info, record.exc_text = None, None
        if record.stack_info:
            record.stack_info = None
        return True
