"""What the API knows of the room right now, as plain values: the newest reading and status of every
device of the site file, the collectors' connections and the CC-16000 check results seen on the bus.

The MQTT subscription that fills it lives in api/live.py; pages, REST routes and /metrics read a
`LiveSnapshot` through the `Live` dependency, and tests hand the app a `StaticLive`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request

Value = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class MetricLive:
    """One metric of a device's newest reading."""

    value: Value
    quality: str  # devices.reading.Quality value: good, stale, comm_error, …
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceLive:
    """The newest state of one device of the site file (whether or not anything arrived yet)."""

    device: str
    name: str
    device_class: str  # ups, genset, crac, env, door, … ("" until a reading says)
    room: str
    zone: str | None
    rack: str | None
    model: str  # the profile name
    at: datetime | None = None  # time of the newest reading; None: no reading since the API started
    quality: str = "none"  # the poll's quality (good, partial, comm_error, …); "none": nothing yet
    metrics: Mapping[str, MetricLive] = field(default_factory=dict)
    duration_s: float | None = None  # how long the newest poll took (the readings message's duration_s)
    status: str | None = None  # the retained device status (online/offline), None: not seen
    status_reason: str | None = None
    status_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CollectorLive:
    """A collector's retained connection status (its will says offline when it dies)."""

    collector: str
    state: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CheckLive:
    """A CC-16000 check result as the compliance process published it (class `compliance`)."""

    item: str
    status: str  # ok, warn, fail, unknown … as compliance publishes it
    at: datetime
    values: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """Everything live at one instant; `connected` is the API's own link to the broker."""

    taken_at: datetime
    connected: bool
    devices: tuple[DeviceLive, ...] = ()
    collectors: tuple[CollectorLive, ...] = ()
    checks: tuple[CheckLive, ...] = ()
    messages: int = 0  # messages received since start (for /metrics)
    rejected: int = 0  # messages that broke the wire contract (logged, dropped)

    def device(self, device_id: str) -> DeviceLive | None:
        """One device by id."""
        return next((d for d in self.devices if d.device == device_id), None)


class LiveSource(Protocol):
    """Where the app gets the live state from."""

    def snapshot(self) -> LiveSnapshot:
        """The state now (cheap: a copy of what is held in memory)."""
        ...


@dataclass(slots=True)
class StaticLive:
    """A fixed snapshot (tests, or an app started without a broker)."""

    value: LiveSnapshot = field(default_factory=lambda: LiveSnapshot(datetime.now(UTC), connected=False))

    def snapshot(self) -> LiveSnapshot:
        """The fixed snapshot."""
        return self.value


async def live_source(request: Request) -> LiveSource:
    """The app's live source (`app.state.live`; an empty one when the app has none)."""
    source = getattr(request.app.state, "live", None)
    return source if source is not None else StaticLive()


Live = Annotated[LiveSource, Depends(live_source)]
