"""What the engine consumes: samples (one metric of one poll), device/collector status and events (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from devices.reading import DeviceClass, DeviceRef, PollResult, Quality, Value
from devices.wire import COLLECTOR_LEVEL, DeviceStatus, EventKind, StatusState, WireEvent

StatusTarget = Literal["device", "collector"]
# (site, room, device, metric): one time series, the unit late readings are judged in.
SeriesKey = tuple[str, str, str, str]
# (site, room, device)
DeviceKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Labels:
    """Where a device is and what it is: what scope selectors and alert labels are made of."""

    site: str
    room: str
    device: str
    device_class: DeviceClass | None = None
    zone: str | None = None
    rack: str | None = None
    # Sorted (name, value) pairs: hashable, so one Labels object is shared by every sample of a device.
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> DeviceKey:
        """(site, room, device)."""
        return (self.site, self.room, self.device)

    def tag(self, name: str) -> str | None:
        """The value of tag `name`, or None."""
        for k, v in self.tags:
            if k == name:
                return v
        return None

    def as_dict(self) -> dict[str, str]:
        """Alert labels: site, room, device, class, zone, rack (those set), then the extra tags."""
        out = {"site": self.site, "room": self.room, "device": self.device}
        if self.device_class is not None:
            out["class"] = self.device_class.value
        if self.zone is not None:
            out["zone"] = self.zone
        if self.rack is not None:
            out["rack"] = self.rack
        for k, v in self.tags:
            out.setdefault(k, v)
        return out


def labels_from_ref(ref: DeviceRef) -> Labels:
    """Labels of a device reference; zone and rack travel as reserved tags (collector/targets.py)."""
    tags = ref.tags
    return Labels(
        site=ref.site,
        room=ref.room,
        device=ref.device,
        device_class=ref.device_class,
        zone=tags.get("zone"),
        rack=tags.get("rack"),
        tags=tuple(sorted((k, v) for k, v in tags.items() if k not in ("zone", "rack"))),
    )


@dataclass(frozen=True, slots=True)
class Sample:
    """One metric of one poll in its context: the engine's reading input."""

    labels: Labels
    metric: str
    ts: datetime  # UTC, taken when the poll started
    value: Value
    quality: Quality = Quality.GOOD
    # Epoch seconds of `ts`, computed once here so the engine's hot path does float arithmetic only.
    t: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", self.ts.timestamp())

    @property
    def series(self) -> SeriesKey:
        """(site, room, device, metric)."""
        lb = self.labels
        return (lb.site, lb.room, lb.device, self.metric)

    @property
    def good(self) -> bool:
        """True when the sample carries a usable value (quality good, not None, not NaN)."""
        return is_good(self.quality, self.value)


def is_good(quality: Quality, value: Value) -> bool:
    """Only a good, present, finite value is a value; everything else is no-data."""
    if quality is not Quality.GOOD or value is None:
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def samples_from_poll(result: PollResult, labels: Labels | None = None) -> list[Sample]:
    """Flatten one poll into samples, one per metric, all stamped with the poll's time.

    The poll's own quality does not override a metric's: a `partial` poll still has good metrics, and a
    failed poll's metrics already carry its failure quality (devices/reading.py clears their values).
    """
    lb = labels if labels is not None else labels_from_ref(result.ref)
    return [Sample(lb, m.name, result.ts, m.value, m.quality) for m in result.metrics]


@dataclass(frozen=True, slots=True)
class StatusInput:
    """An online/offline report of a device (retained status topic) or of a collector (its last will)."""

    labels: Labels
    ts: datetime
    state: StatusState
    reason: str | None = None
    target: StatusTarget = "device"
    t: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", self.ts.timestamp())


def status_from_wire(labels: Labels, status: DeviceStatus) -> StatusInput:
    """A decoded device status message as engine input (labels: the device's, from the site file)."""
    return StatusInput(labels, status.ts, status.state, status.reason, "device")


def collector_status_from_wire(site: str, collector_id: str, status: DeviceStatus) -> StatusInput:
    """A decoded collector status message (room `_collector`, device = collector id, class system)."""
    labels = Labels(site, COLLECTOR_LEVEL, collector_id, DeviceClass.SYSTEM)
    return StatusInput(labels, status.ts, status.state, status.reason, "collector")


@dataclass(frozen=True, slots=True)
class EventInput:
    """A trap or door event: instantaneous, it has a name instead of a value."""

    labels: Labels
    ts: datetime
    kind: EventKind
    name: str
    source: str | None = None
    fields: Mapping[str, Value] = field(default_factory=dict)
    t: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", self.ts.timestamp())


def event_from_wire(event: WireEvent, labels: Labels | None = None) -> EventInput:
    """A decoded event message as engine input.

    The wire event names no device class, zone or rack: pass the device's `labels` (from the site file)
    so class/zone/rack scopes work; without them the labels hold what the event says, and a trap from an
    unknown sender is filed under its source address as the device.
    """
    if labels is None:
        labels = Labels(event.site, event.room or "", event.device or event.source or "")
    return EventInput(labels, event.ts, event.kind, event.name, event.source, dict(event.fields))


Input = Sample | StatusInput | EventInput
