"""Everything the CC-16000 checks look at, gathered in one immutable value (the checks are pure).

The compliance process builds `Facts` from the records database, the live telemetry it read from the
bus and the retained alert topic; golden tests build it from a folder of JSON. A check never reads
anything else, so its result for the same facts and clock is always the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from compliance.kinds import RecordModel
from compliance.result import CheckResult
from siteconfig.compliance_config import ComplianceConfig

Value = float | int | bool | str | None
R = TypeVar("R", bound=RecordModel)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A configured device: id, class (ups, genset, crac, env, door, contact), room."""

    id: str
    device_class: str
    room: str


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the bus last said about one device: when, whether it answered, its good metric values."""

    last_seen: datetime | None
    online: bool | None  # None: no status yet
    metrics: dict[str, Value] = field(default_factory=dict)  # good values only (bad quality: absent)


@dataclass(frozen=True, slots=True)
class EnvWindow:
    """Environment samples of one room over the configured window (counted live from readings)."""

    samples: int
    outside_recommended: int
    outside_allowable: int
    worst_temp_c: float | None = None  # the hottest inlet seen in the window
    worst_rh_pct: float | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertInfo:
    """One alert as the retained alert topic carries it (roomguard.alert/1), without its texts."""

    id: str
    rule: str
    severity: str
    state: str  # firing | resolved
    device_class: str | None
    room: str | None
    device: str | None
    started_at: datetime
    resolved_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None
    text_zh: str = ""
    text_en: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """The inputs of one evaluation of the board."""

    now: datetime
    tz: ZoneInfo
    config: ComplianceConfig
    site_id: str
    rooms: tuple[str, ...]
    devices: tuple[DeviceInfo, ...]
    records: dict[str, Sequence[RecordModel]] = field(default_factory=dict)  # kind → live records
    telemetry: dict[str, DeviceState] = field(default_factory=dict)  # device id → state
    environment: dict[str, EnvWindow] = field(default_factory=dict)  # room → window counts
    alerts: tuple[AlertInfo, ...] = ()
    # The access-rights item's result, computed by the access-review module; None: no review recorded.
    access_review: CheckResult | None = None

    def of(self, model: type[R]) -> list[R]:
        """The live records of one kind."""
        return [r for r in self.records.get(model.KIND, ()) if isinstance(r, model)]

    def devices_of(self, device_class: str) -> list[DeviceInfo]:
        """Configured devices of one class."""
        return [d for d in self.devices if d.device_class == device_class]
