"""What every notification channel receives and how it reports a failed delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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
