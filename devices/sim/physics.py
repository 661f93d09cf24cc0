# ruff: noqa: RUF001 - the zh-TW descriptions use full-width punctuation, as Traditional Chinese does.
"""The simulated machine room: per-device engineering values stepped by an injected clock (pure, no I/O).

Values use the canonical metric names of docs/contracts.md. Scenarios are switched on and off by name;
the model derives every device's behaviour from the set of active scenarios, so clearing one always
returns the room to its baseline physics. Time can be accelerated (`speed`) so a 30-minute generator
test runs in seconds of wall time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from devices.reading import Value
from devices.sim.physics_cooling import (
    FAR_RATE_C_PER_S,
    FAR_RISE_C,
    NEAR_RATE_C_PER_S,
    NEAR_RISE_C,
    CracModel,
    EnvModel,
)
from devices.sim.physics_power import (
    GRID_HZ,
    GRID_V,
    MAINS_FAIL_DELAY_S,
    RETRANSFER_DELAY_S,
    GensetModel,
    UpsModel,
)

DEVICE_CLASSES = ("ups", "genset", "crac", "env", "door", "contact")
MAX_SUBSTEP_S = 1.0  # integration step: start sequences are specified to the second
TEST_ON_LOAD_S = 35 * 60.0  # NFPA 110 monthly test: >=30 min on load; sites run 5 min more so that the
# ATS transfer and poll granularity never make a test fall short (at --speed 30 the margin is still 10 s)
TEST_MIN_LOAD_PCT = 30.0
LOAD_BANK_PCT = 40.0  # a portable load bank tops the test load up to this share of the rating
SHORT_TEST_ON_LOAD_S = 20 * 60.0  # cut short: too short to count as the monthly test
UPS_SELF_TEST_S = 10.0  # a UPS battery self-test: a few seconds on battery under the UPS's own control
LIGHT_TEST_LOAD_PCT = 20.0  # too light to count as the monthly test
DOOR_OPEN_AFTER_GRANT_S = 2.0
LOCK_RELEASE_S = 5.0
ROOM_BASE_LOAD_W = 15_000.0  # lighting, access control, fire panel, small IT outside the UPS
CRAC_LOAD_W = 18_000.0


@dataclass(frozen=True, slots=True)
class GenTest:
    """A generator test on load: how long the set stays on load and how heavily (% of its rating).

    `transfer`: the ATS moves the building onto the set and the load bank tops it up to `load_pct`;
    without, the building stays on mains and the load bank alone loads the set to `load_pct` (a room
    drawing more than that share could not show a light test otherwise).
    """

    on_load_s: float
    load_pct: float
    transfer: bool = True


GEN_TESTS: dict[str, GenTest] = {
    "generator_monthly_test": GenTest(TEST_ON_LOAD_S, LOAD_BANK_PCT),
    "generator_short_test": GenTest(SHORT_TEST_ON_LOAD_S, LOAD_BANK_PCT),
    "generator_light_test": GenTest(TEST_ON_LOAD_S, LIGHT_TEST_LOAD_PCT, transfer=False),
}


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    """What a scenario does, which device class it targets (None = the whole room), in zh-TW and English."""

    name: str
    target_class: str | None
    zh: str
    en: str


SCENARIOS: dict[str, ScenarioInfo] = {
    s.name: s
    for s in (
        ScenarioInfo("normal", None, "恢復正常：清除所有情境", "Back to normal: clear every scenario"),
        ScenarioInfo(
            "utility_outage",
            None,
            "市電中斷：UPS 轉電池、發電機自動啟動並接載",
            "Utility outage: UPS on battery, generator starts and takes the load",
        ),
        ScenarioInfo(
            "crac_failure", "crac", "空調故障：機房溫度上升", "CRAC failure: room temperature rises"
        ),
        ScenarioInfo(
            "door_forced", "door", "門被強行開啟（無授權刷卡）", "Door forced open (no access grant)"
        ),
        ScenarioInfo("door_held_open", "door", "授權開門後門未關閉", "Door held open after an access grant"),
        ScenarioInfo("sensor_fault", "env", "感測器故障：數值無效", "Sensor fault: values unavailable"),
        ScenarioInfo("device_silent", "*", "設備無回應", "Device stops answering"),
        ScenarioInfo(
            "generator_monthly_test",
            "genset",
            "發電機月測：帶載 ≥30 % 運轉 ≥30 分鐘後冷機停機",
            "Generator monthly test: >=30 min at >=30 % load, then cool-down and stop",
        ),
        ScenarioInfo(
            "generator_short_test",
            "genset",
            "發電機短時測試：帶載 20 分鐘即結束，冷機停機（未滿 30 分鐘，不計入月測）",
            "Generator short test: 20 min on load, then cool-down and stop (under 30 min: no monthly test)",
        ),
        ScenarioInfo(
            "generator_light_test",
            "genset",
            "發電機輕載測試：假負載帶載約 20 % 運轉 ≥30 分鐘，機房仍由市電供電，"
            "後冷機停機（未達 30 %，不計入月測）",
            "Generator light test: >=30 min at about 20 % load on the load bank (building stays on mains), "
            "then cool-down and stop (under 30 %: no monthly test)",
        ),
        ScenarioInfo("water_leak", "contact", "漏水偵測", "Water leak detected"),
        ScenarioInfo(
            "ups_self_test",
            "ups",
            "UPS 自我測試：測試中約 10 秒，結果為通過",
            "UPS self-test: in progress for about 10 s, then passed",
        ),
    )
}


class UnknownScenario(ValueError):
    """A scenario name that does not exist; the message lists the valid ones."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown scenario {name!r}; valid scenarios: {', '.join(SCENARIOS)}")


@dataclass(frozen=True, slots=True)
class DeviceDecl:
    """A device the model simulates: its id, class and optional zone (for heat proximity)."""

    id: str
    device_class: str
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something that happened in the room that a poll cannot see (an access grant)."""

    ts: float
    device: str
    kind: str
    detail: dict[str, Value] = field(default_factory=dict)


@dataclass
class _Door:
    open: bool = False
    rex: bool = False
    lock_engaged: bool = True


class RoomModel:
    """All simulated devices of one room, stepped with `step(now)`; deterministic for a given seed."""

    def __init__(
        self, devices: Sequence[DeviceDecl], seed: int = 0, speed: float = 1.0, start: float = 0.0
    ) -> None:
        """`start` is the caller's clock reading at which simulated time 0 begins."""
        ids = [d.id for d in devices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate device ids in {ids}")
        for d in devices:
            if d.device_class not in DEVICE_CLASSES:
                raise ValueError(f"device {d.id}: class {d.device_class!r} not one of {DEVICE_CLASSES}")
        self.devices = {d.id: d for d in devices}
        self.speed = speed
        self.sim_time = 0.0
        self.silent_devices: set[str] = set()
        self._rng = random.Random(seed)
        self._wall = start
        self._active: dict[tuple[str, str], float] = {}  # (scenario, device or "") -> sim start time
        self._pending: list[tuple[float, str, str | None]] = []
        self._events: list[SimEvent] = []
        self._ups = {
            d.id: UpsModel(load_pct=30.0 + round(10 * self._rng.random(), 1))
            for d in devices
            if d.device_class == "ups"
        }
        self._gensets = {d.id: GensetModel() for d in devices if d.device_class == "genset"}
        self._cracs = {d.id: CracModel() for d in devices if d.device_class == "crac"}
        self._envs = {
            d.id: EnvModel(
                base_c=round(21.0 + 3.0 * self._rng.random(), 1),
                base_rh=round(43.0 + 4.0 * self._rng.random(), 1),
            )
            for d in devices
            if d.device_class == "env"
        }
        self._doors = {d.id: _Door() for d in devices if d.device_class == "door"}
        self._contacts = {
            d.id: {"leak": False, "smoke": False} for d in devices if d.device_class == "contact"
        }
        self._ats = "mains"
        self._mains_off_s = 0.0
        self._mains_on_s = RETRANSFER_DELAY_S
        self._test_on_load_s: dict[str, float] = {}

    # --- scenarios ----------------------------------------------------------------------------------

    def trigger(self, name: str, device: str | None = None, at: float | None = None) -> str:
        """Start scenario `name` (now, or when the caller's clock reaches `at`); returns the target id."""
        target = self._target(name, device)
        if at is not None and at > self._wall:
            self._pending.append((at, name, device))
            self._pending.sort(key=lambda p: p[0])
            return target
        self._start(name, target)
        self._tick(0.0)  # instantaneous consequences (UPS on battery, door open) show without waiting
        return target

    def clear(self, name: str, device: str | None = None) -> bool:
        """End scenario `name` (for one device, or every device it is active on); False if not active."""
        if name not in SCENARIOS:
            raise UnknownScenario(name)
        keys = [k for k in self._active if k[0] == name and (device is None or k[1] == device)]
        for key in keys:
            self._end(*key)
        self._tick(0.0)
        return bool(keys)

    def active(self) -> list[dict[str, Value]]:
        """Active scenarios with their target and how long (simulated seconds) they have run."""
        out: list[dict[str, Value]] = []
        for (name, dev), since in sorted(self._active.items()):
            item: dict[str, Value] = {
                "scenario": name,
                "device": dev or None,
                "elapsed_s": round(self.sim_time - since, 1),
            }
            if name in GEN_TESTS:
                item["on_load_s"] = round(self._test_on_load_s.get(dev, 0.0), 1)
            out.append(item)
        return out

    def drain_events(self) -> list[SimEvent]:
        """Events since the last call (access grants), oldest first."""
        events, self._events = self._events, []
        return events

    def _target(self, name: str, device: str | None) -> str:
        info = SCENARIOS.get(name)
        if info is None:
            raise UnknownScenario(name)
        cls = info.target_class
        if cls is None:
            if device is not None:
                raise ValueError(f"scenario {name!r} applies to the whole room; it takes no device")
            return ""
        if device is not None:
            decl = self.devices.get(device)
            if decl is None:
                raise ValueError(f"unknown device {device!r}; devices: {', '.join(self.devices)}")
            # A sensor fault can hit any device; the others need their class.
            if cls not in ("*", decl.device_class) and name != "sensor_fault":
                raise ValueError(f"scenario {name!r} needs a {cls} device; {device!r} is {decl.device_class}")
            return device
        for d in self.devices.values():
            if cls in ("*", d.device_class):
                return d.id
        raise ValueError(f"scenario {name!r} needs a {cls} device and the room has none")

    def _start(self, name: str, target: str) -> None:
        if name == "normal":
            self._pending.clear()
            for key in list(self._active):
                self._end(*key)
            return
        self._active.setdefault((name, target), self.sim_time)
        if name == "device_silent":
            self.silent_devices.add(target)
        elif name in GEN_TESTS:
            for other in GEN_TESTS:  # one test at a time per set: a new one replaces the running one
                if other != name:
                    self._active.pop((other, target), None)
            self._gensets[target].control_mode = "test_on_load"
            self._test_on_load_s[target] = 0.0
        elif name == "door_held_open":
            self._emit(target, "access_granted", {"credential": "sim-card-0001", "reason": "card"})
        elif name == "ups_self_test":
            self._ups[target].test_result = "in_progress"

    def _end(self, name: str, target: str) -> None:
        self._active.pop((name, target), None)
        if name == "device_silent":
            self.silent_devices.discard(target)
        elif name in GEN_TESTS:
            self._gensets[target].control_mode = "auto"
        elif name == "ups_self_test":
            self._ups[target].test_result = "passed"

    def _is(self, name: str, target: str = "") -> bool:
        return (name, target) in self._active

    def _emit(self, device: str, kind: str, detail: dict[str, Value]) -> None:
        self._events.append(SimEvent(self._wall, device, kind, detail))

    # --- time -----------------------------------------------------------------------------------------

    def step(self, now: float) -> None:
        """Advance the room to the caller's clock reading `now` (a clock going backwards is ignored)."""
        while self._pending and self._pending[0][0] <= now:
            at, name, device = self._pending.pop(0)
            self._advance_to(at)
            self._start(name, self._target(name, device))
            self._tick(0.0)
        self._advance_to(now)
        self._draw_noise()

    def _advance_to(self, now: float) -> None:
        wall_dt = now - self._wall
        if wall_dt <= 0:
            # Clock stepped back: keep the simulation where it is and follow the new clock from here.
            self._wall = now
            return
        sim_dt = wall_dt * self.speed
        done = 0.0
        while done < sim_dt - 1e-9:
            dt = min(MAX_SUBSTEP_S, sim_dt - done)
            self._tick(dt)
            done += dt
            self._wall += dt / self.speed if self.speed > 0 else 0.0
        self._wall = now

    def _tick(self, dt: float) -> None:
        self.sim_time += dt
        self._step_power(dt)
        self._step_cooling(dt)
        self._step_doors()

    def _step_power(self, dt: float) -> None:
        for (name, uid), since in list(self._active.items()):
            if name == "ups_self_test" and self.sim_time - since >= UPS_SELF_TEST_S:
                self._end(name, uid)  # the test is over: the UPS reports its result
        mains_ok = not self._is("utility_outage")
        if mains_ok:
            self._mains_on_s += dt
            self._mains_off_s = 0.0
        else:
            self._mains_off_s += dt
            self._mains_on_s = 0.0
        demand = {gid: self._wants_engine(g) for gid, g in self._gensets.items()}
        ready = [gid for gid, g in self._gensets.items() if g.stable and demand[gid]]
        tests = {gid: name for name, gid in self._active if name in GEN_TESTS}
        testing = [gid for gid in ready if gid in tests]
        if not mains_ok:
            self._ats = "genset" if ready else "none"
        elif any(GEN_TESTS[tests[gid]].transfer for gid in testing):
            self._ats = "genset"  # test on load: the ATS moves the building onto the set
        elif not (self._ats == "genset" and self._mains_on_s < RETRANSFER_DELAY_S and ready):
            self._ats = "mains"
        connected = ready if self._ats == "genset" else []
        room_w = (
            ROOM_BASE_LOAD_W
            + sum(u.input_w for u in self._ups.values())
            + CRAC_LOAD_W * sum(not c.failed for c in self._cracs.values())
        )
        for gid, g in self._gensets.items():
            load_w = room_w / len(connected) if gid in connected else 0.0
            if gid in testing:  # the load bank tops the set up to the test's load
                load_w = max(load_w, g.rated_w * GEN_TESTS[tests[gid]].load_pct / 100.0)
            g.connected = gid in connected or gid in testing  # on load: the building's, the bank's
            g.mains_failed = not mains_ok
            g.step(dt, demand[gid], load_w)
        for gid in testing:
            g, test = self._gensets[gid], GEN_TESTS[tests[gid]]
            if g.connected and g.load_pct >= min(TEST_MIN_LOAD_PCT, test.load_pct):
                self._test_on_load_s[gid] = self._test_on_load_s.get(gid, 0.0) + dt
                if self._test_on_load_s[gid] >= test.on_load_s:
                    self._end(tests[gid], gid)  # test complete: back to auto, cool down
        if self._ats == "mains" and mains_ok:
            supply_v, supply_hz = GRID_V, GRID_HZ
        elif self._ats == "genset" and connected:
            supply_v, supply_hz = GRID_V, self._gensets[connected[0]].rpm / 30.0
        else:
            supply_v, supply_hz = 0.0, 0.0
        for u in self._ups.values():
            u.step(dt, supply_v, supply_hz)

    def _wants_engine(self, g: GensetModel) -> bool:
        if g.control_mode in ("test_on_load", "test_off_load", "manual"):
            return True
        if g.control_mode not in ("auto", "auto_manual_restore"):
            return False
        if self._mains_off_s >= MAINS_FAIL_DELAY_S:
            return True
        # Mains back: keep running (and on load) until the retransfer delay has passed.
        return self._ats == "genset" and self._mains_on_s < RETRANSFER_DELAY_S

    def _near(self, a: str, b: str) -> bool:
        za, zb = self.devices[a].zone, self.devices[b].zone
        if za is not None and zb is not None:
            return za == zb
        return len(self._cracs) == 1

    def _step_cooling(self, dt: float) -> None:
        failed = {cid for cid in self._cracs if self._is("crac_failure", cid)}
        everything_failed = bool(self._cracs) and len(failed) == len(self._cracs)
        for cid, crac in self._cracs.items():
            crac.failed = cid in failed
            crac.other_failed = bool(failed - {cid})
        points = [(pid, e.heat) for pid, e in self._envs.items()]
        points += [(cid, c.heat) for cid, c in self._cracs.items()]
        for pid, heat in points:
            if not failed:
                heat.step(dt, 0.0, 0.0)
            elif everything_failed or pid in failed or any(self._near(pid, f) for f in failed):
                heat.step(dt, NEAR_RISE_C, NEAR_RATE_C_PER_S)
            else:
                heat.step(dt, FAR_RISE_C, FAR_RATE_C_PER_S)
        for crac in self._cracs.values():
            crac.step(dt)

    def _step_doors(self) -> None:
        for did, door in self._doors.items():
            held_since = self._active.get(("door_held_open", did))
            held_for = None if held_since is None else self.sim_time - held_since
            door.open = self._is("door_forced", did) or (
                held_for is not None and held_for >= DOOR_OPEN_AFTER_GRANT_S
            )
            door.lock_engaged = held_for is None or held_for >= LOCK_RELEASE_S
            door.rex = False
        for cid, contact in self._contacts.items():
            contact["leak"] = self._is("water_leak", cid)

    def _draw_noise(self) -> None:
        # Once per step() call, in a fixed order: results depend only on the seed and the step times.
        for e in self._envs.values():
            e.noise_c = max(-0.15, min(0.15, self._rng.gauss(0.0, 0.05)))
            e.noise_rh = max(-0.8, min(0.8, self._rng.gauss(0.0, 0.3)))
        for c in self._cracs.values():
            c.noise_c = max(-0.1, min(0.1, self._rng.gauss(0.0, 0.03)))

    # --- output -------------------------------------------------------------------------------------------

    def values(self, device: str) -> dict[str, Value]:
        """Current engineering values of one device by canonical metric name (None = sensor fault)."""
        cls = self.devices[device].device_class
        vals: dict[str, Value]
        if cls == "ups":
            vals = self._ups[device].values()
        elif cls == "genset":
            vals = self._gensets[device].values()
        elif cls == "crac":
            vals = self._cracs[device].values()
        elif cls == "env":
            vals = self._envs[device].values()
        elif cls == "door":
            d = self._doors[device]
            vals = {"door_open": d.open, "rex": d.rex, "lock_engaged": d.lock_engaged}
        else:
            vals = dict(self._contacts[device])
        if self._is("sensor_fault", device):
            return dict.fromkeys(vals)
        return vals

    def faulted(self, device: str) -> bool:
        """True while a sensor_fault scenario makes every value of `device` unavailable."""
        return self._is("sensor_fault", device)

    def snapshot(self) -> dict[str, dict[str, Value]]:
        """Values of every device, by device id."""
        return {d: self.values(d) for d in self.devices}
