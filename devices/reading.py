"""The reading types every other package consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

Value = float | int | bool | str | None


class Quality(StrEnum):
    """How far a value can be trusted; anything but GOOD carries no usable value.

    PARTIAL is a poll's quality only (devices/fit.py): the device answered, but most of its metrics are
    unavailable. A metric is never PARTIAL.
    """

    GOOD = "good"
    STALE = "stale"
    COMM_ERROR = "comm_error"
    DECODE_ERROR = "decode_error"
    AUTH_ERROR = "auth_error"
    UNAVAILABLE = "unavailable"
    PARTIAL = "partial"


class DeviceClass(StrEnum):
    """The kinds of equipment in a machine room."""

    UPS = "ups"
    GENSET = "genset"
    CRAC = "crac"
    ENV = "env"
    DOOR = "door"
    CONTACT = "contact"
    COMPLIANCE = "compliance"
    SYSTEM = "system"  # roomguard's own health (collector self-metrics), not equipment


@dataclass(frozen=True, slots=True)
class Metric:
    """One decoded value of a device, without device context (what a codec returns)."""

    name: str
    value: Value
    quality: Quality = Quality.GOOD

    def __post_init__(self) -> None:
        # A sentinel, auth failure or decode failure is never a value (docs/architecture.md, data model).
        if self.quality is not Quality.GOOD and self.value is not None:
            object.__setattr__(self, "value", None)


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """Where a device lives and what it is: the tags every reading carries."""

    site: str
    room: str
    device: str
    device_class: DeviceClass
    model: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PollResult:
    """Everything one poll of one device produced; the unit that travels over MQTT and downstream.

    A "reading" of the data model is one metric of a poll in its context: `ref` (site, room, device,
    class, model, tags such as zone and rack), `ts` (UTC, taken at poll time) and the `Metric`."""

    ref: DeviceRef
    ts: datetime
    metrics: tuple[Metric, ...]
    duration_s: float = 0.0
    error: str | None = None
    quality: Quality = Quality.GOOD
