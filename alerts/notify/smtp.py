"""E-mail channel over SMTP with the standard library (smtplib in a worker thread).

One message per notification: a UTF-8 subject `zh-TW / English` and a multipart/mixed body of two
inline text/plain parts, Traditional Chinese first (Content-Language: zh-TW), then English (en).
Transfer-encoded for 7-bit transport, so no server extension (8BITMIME, SMTPUTF8) is needed.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import smtplib
import socket
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from alerts.notify.base import DeliveryError, Notification, bilingual_subject, redact

_LOG = logging.getLogger(__name__)

Security = Literal["starttls", "ssl", "none"]
DEFAULT_TIMEOUT_S = 30.0
# 7bit: every part base64 or quoted-printable, headers RFC 2047 encoded-words; linesep CRLF for SMTP.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


def _thread_id(key: str) -> str:
    """A stable Message-ID-like reference per alert, so mail clients thread firing, reminders and the
    resolution of one alert together (References / In-Reply-To)."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@alert.roomguard>"


def build_message(notification: Notification, sender: str, to: Sequence[str]) -> EmailMessage:
    """The e-mail for `notification` (pure; the channel adds nothing after this)."""
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = bilingual_subject(notification)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="alert.roomguard")
    ref = _thread_id(notification.key)
    msg["References"] = ref
    msg["In-Reply-To"] = ref
    msg["MIME-Version"] = "1.0"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to the alert sender
    if notification.severity == "critical":
        msg["Importance"] = "high"
        msg["X-Priority"] = "1"
    msg.make_mixed()  # before any Content-* header: make_mixed would move those into a first, empty part
    for text, lang in ((notification.body_zh, "zh-TW"), (notification.body_en, "en")):
        part = EmailMessage(policy=_POLICY)
        part.set_content(text if text.endswith("\n") else text + "\n", charset="utf-8")
        part["Content-Language"] = lang
        part["Content-Disposition"] = "inline"
        msg.attach(part)
    return msg


def _retryable_code(code: int) -> bool:
    """SMTP reply classes: 4xx transient (try again), 5xx permanent (RFC 5321 §4.2.1)."""
    return not 500 <= code < 600


class SmtpChannel:
    """Sends each notification as one e-mail to `to` through an SMTP relay.

    `security`: "starttls" (port 587, the default; the upgrade is required, never skipped), "ssl"
    (implicit TLS, port 465) or "none" (a relay on a trusted network, port 25). The server certificate
    is verified (system CA store, or `ca_file`) unless `verify_tls` is False. `password` is the resolved
    secret (siteconfig.secrets.SecretRef.resolve by the caller); it never appears in errors or logs.

    Not retryable: authentication refused (5xx), any other permanent 5xx reply (sender or every
    recipient refused, message rejected), a server without STARTTLS or AUTH when they are asked for, an
    untrusted certificate. Retryable: cannot connect, timeouts, dropped connections, 4xx replies.
    Some recipients refused while others accepted: not retryable (a retry would repeat it to those who
    have it); the error names the refused addresses.
    """

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sender: str,
        to: Sequence[str],
        *,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        verify_tls: bool = True,
        ca_file: str | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if not to:
            raise ValueError(f"smtp {name}: no recipients")
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"smtp {name}: security must be starttls, ssl or none")
        if (username is None) != (password is None):
            raise ValueError(f"smtp {name}: give both username and password, or neither")
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.to = tuple(to)
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        self.verify_tls = verify_tls
        self.ca_file = ca_file
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        return (
            f"SmtpChannel({self.name!r}, {self.host}:{self.port}, {self.security}, user={self.username!r}, "
            f"to={len(self.to)})"
        )

    async def send(self, notification: Notification) -> None:
        """Send one e-mail; DeliveryError says whether to try again."""
        msg = build_message(notification, self.sender, self.to)
        try:
            refused = await asyncio.to_thread(self._deliver, msg)
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._classify(exc) from None
        if refused:
            delivered = len(self.to) - len(refused)
            raise DeliveryError(
                self._clean(
                    f"smtp {self.name}: delivered to {delivered} of {len(self.to)} recipients; refused: "
                    + "; ".join(f"{addr} ({code} {_text(text)})" for addr, (code, text) in refused.items())
                ),
                retryable=False,
            )
        _LOG.debug("smtp %s: sent %s to %d recipients", self.name, notification.key, len(self.to))

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _deliver(self, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """In a worker thread: connect, secure, log in, send; the recipients refused (some, not all)."""
        ctx = self._context() if self.security != "none" else None
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout_s, context=ctx
            )
        else:
            smtp = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout_s
            )
        with smtp:
            smtp.ehlo()
            if self.security == "starttls":
                smtp.starttls(context=ctx)  # raises SMTPNotSupportedError if the server lacks it
                smtp.ehlo()
            if self.username is not None and self._password is not None:
                smtp.login(self.username, self._password)
            return smtp.send_message(msg, from_addr=self.sender, to_addrs=list(self.to))

    def _clean(self, text: str) -> str:
        return redact(text, [self._password] if self._password and len(self._password) >= 2 else [])

    def _classify(self, exc: Exception) -> DeliveryError:
        where = f"smtp {self.name} ({self.host}:{self.port})"
        retryable: bool
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            retryable = any(_retryable_code(c) for c in codes)
            what = "every recipient refused: " + "; ".join(
                f"{addr} ({code} {_text(text)})" for addr, (code, text) in exc.recipients.items()
            )
        elif isinstance(exc, smtplib.SMTPAuthenticationError):
            retryable = _retryable_code(exc.smtp_code)
            what = f"authentication refused ({exc.smtp_code} {_text(exc.smtp_error)})"
        elif isinstance(exc, smtplib.SMTPSenderRefused):
            retryable = _retryable_code(exc.smtp_code)
            what = f"sender {exc.sender} refused ({exc.smtp_code} {_text(exc.smtp_error)})"
        elif isinstance(exc, smtplib.SMTPResponseException):
            # Greeting (SMTPConnectError), HELO, DATA and other replies.
            retryable = _retryable_code(exc.smtp_code)
            what = f"server replied {exc.smtp_code} {_text(exc.smtp_error)} ({type(exc).__name__})"
        elif isinstance(exc, smtplib.SMTPNotSupportedError):
            retryable = False
            what = f"server lacks a required extension: {exc}"
        elif isinstance(exc, smtplib.SMTPServerDisconnected):
            retryable = True
            what = f"connection closed by the server ({exc})"
        elif isinstance(exc, ssl.SSLCertVerificationError):
            retryable = False
            what = f"TLS certificate not trusted ({exc.verify_message})"
        elif isinstance(exc, ssl.SSLError):
            retryable = True
            what = f"TLS failed ({exc.reason or exc})"
        elif isinstance(exc, socket.gaierror):
            retryable = True
            what = f"cannot resolve {self.host} ({exc.strerror})"
        elif isinstance(exc, TimeoutError):
            retryable = True
            what = f"no answer within {self.timeout_s:g} s"
        elif isinstance(exc, smtplib.SMTPException):  # (an OSError: before that branch)
            # "No suitable authentication method found", and the like: a configuration mismatch.
            retryable = False
            what = f"{exc}"
        elif isinstance(exc, OSError):
            retryable = True
            what = f"cannot connect ({exc.strerror or type(exc).__name__})"
        else:
            retryable = True
            what = f"unexpected {type(exc).__name__}"
        return DeliveryError(self._clean(f"{where}: {what}"), retryable=retryable)


def _text(reply: bytes | str) -> str:
    """A server reply for an error message: decoded, one line, bounded."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:200]


__all__ = ["SmtpChannel", "build_message"]
