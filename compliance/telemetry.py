"""The live picture the checks need, folded from bus messages (pure: callers pass times in).

Per device the newest good metric values, when it was last heard from and whether it is online; per
room a rolling window of environment samples in one-minute buckets (how many, how many outside the
recommended and the allowable ASHRAE envelope, the worst temperature and humidity), so a day of 5 s
readings from dozens of sensors costs 1,440 small buckets per room, not every sample.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from compliance.envelope import Envelope, envelope, within
from compliance.facts import DeviceState, EnvWindow, Value
from devices.reading import PollResult, Quality
from siteconfig.compliance_config import Environment

BUCKET_S = 60


@dataclass(slots=True)
class _Bucket:
    minute: int  # unix minute
    samples: int = 0
    outside_recommended: int = 0
    outside_allowable: int = 0
    max_temp: float | None = None
    max_rh: float | None = None


def envelopes_of(cfg: Environment) -> tuple[Envelope, Envelope]:
    """The (recommended, allowable) envelopes a site configured; the recommended RH ceiling applied."""
    rh_ceiling = cfg.rh_max_pct if cfg.recommended == "recommended" else None
    return envelope(cfg.recommended, rh_ceiling), envelope(cfg.allowable)


def _num(v: Value) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


class Telemetry:
    """Newest state per device and environment windows per room (see the module docstring)."""

    def __init__(self, env: Environment):
        self.window = timedelta(hours=env.window_h)
        self.recommended, self.allowable = envelopes_of(env)
        # Not server inlets (hot aisle, return air): ASHRAE's envelopes do not apply to them.
        self.not_inlets = frozenset(env.exclude_devices)
        self.devices: dict[str, DeviceState] = {}
        self._rooms: dict[str, deque[_Bucket]] = {}
        self._online: dict[str, bool] = {}

    def poll(self, result: PollResult) -> dict[str, Value]:
        """Fold one poll in; returns its good metric values."""
        good = {m.name: m.value for m in result.metrics if m.quality is Quality.GOOD}
        dev = result.ref.device
        prev = self.devices.get(dev)
        if result.quality in (Quality.COMM_ERROR, Quality.AUTH_ERROR):
            # A failed poll: the device is not answering; keep its last values, mark when we tried.
            self.devices[dev] = DeviceState(
                prev.last_seen if prev else None, False, prev.metrics if prev else {}
            )
            return {}
        self.devices[dev] = DeviceState(result.ts, self._online.get(dev, True), good)
        if result.ref.device_class.value == "env" and dev not in self.not_inlets:
            self._env_sample(result.ref.room, result.ts, good)
        return good

    def status(self, device: str, online: bool) -> None:
        """A device status message (online/offline from the collector)."""
        self._online[device] = online
        prev = self.devices.get(device)
        self.devices[device] = DeviceState(
            prev.last_seen if prev else None, online, prev.metrics if prev else {}
        )

    def _env_sample(self, room: str, ts: datetime, good: dict[str, Value]) -> None:
        temp, rh, dp = _num(good.get("temp_c")), _num(good.get("rh_pct")), _num(good.get("dew_point_c"))
        if temp is None and rh is None:
            return
        minute = int(ts.timestamp()) // BUCKET_S
        buckets = self._rooms.setdefault(room, deque())
        if buckets and buckets[-1].minute == minute:
            b = buckets[-1]
        elif buckets and buckets[-1].minute > minute:
            return  # a late sample of a minute already closed: the live window only moves forward
        else:
            b = _Bucket(minute)
            buckets.append(b)
        b.samples += 1
        b.outside_recommended += not within(self.recommended, temp, rh, dp)
        b.outside_allowable += not within(self.allowable, temp, rh, dp)
        if temp is not None:
            b.max_temp = temp if b.max_temp is None else max(b.max_temp, temp)
        if rh is not None:
            b.max_rh = rh if b.max_rh is None else max(b.max_rh, rh)

    def environment(self, now: datetime) -> dict[str, EnvWindow]:
        """Per room the window ending at `now` (older buckets are dropped)."""
        first = int((now - self.window).timestamp()) // BUCKET_S
        out: dict[str, EnvWindow] = {}
        for room, buckets in self._rooms.items():
            while buckets and buckets[0].minute < first:
                buckets.popleft()
            temps = [b.max_temp for b in buckets if b.max_temp is not None]
            rhs = [b.max_rh for b in buckets if b.max_rh is not None]
            out[room] = EnvWindow(
                samples=sum(b.samples for b in buckets),
                outside_recommended=sum(b.outside_recommended for b in buckets),
                outside_allowable=sum(b.outside_allowable for b in buckets),
                worst_temp_c=max(temps) if temps else None,
                worst_rh_pct=max(rhs) if rhs else None,
                since=datetime.fromtimestamp(buckets[0].minute * BUCKET_S, tz=now.tzinfo)
                if buckets
                else None,
            )
        return out
