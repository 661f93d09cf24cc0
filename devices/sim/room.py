"""The simulated machine room on the wire: RoomModel values served by Modbus/SNMP simulators (I/O shell).

One `ModbusSimServer` or `SnmpSimAgent` per (protocol, host, port) endpoint, a tick loop that steps the
pure `RoomModel` and pushes changed values, and a small aiohttp control API to trigger scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

from aiohttp import web

from devices.codec import encode_point
from devices.modbus_profile import ModbusProfile
from devices.reading import Value
from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer
from devices.sim.physics import SCENARIOS, DeviceDecl, RoomModel, SimEvent, UnknownScenario
from devices.sim.room_traps import RoomTraps
from devices.sim.snmp_agent import SnmpSimAgent
from devices.snmp_codec import decode, encode_profile, encoded_values
from devices.snmp_profile import SnmpProfile
from devices.snmp_transport import SnmpV3

log = logging.getLogger(__name__)

# When a device model cannot represent a canonical state (InRow has no "off", only standby), serve the
# closest state it has rather than nothing.
SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "off": ("standby", "idle"),
    "idle": ("standby", "on"),
    "critical": ("warning", "info"),
    "info": ("normal",),
    "test_on_load": ("manual", "test_off_load"),
    "active_indication": ("warning", "shutdown"),
    "inactive_indication": ("not_active",),
    "cooling_down": ("running",),
    "post_run": ("stopped",),
}
_SKIP = object()
_MAX_EVENTS = 200
# Per device: (metric, value) decisions of `_Served.adapt` kept. Steady state needs a few dozen; counters
# (genset run time, seconds on battery) bring a new value every second while a scenario runs, so the
# cache starts over when full instead of growing with every test run (the decision is cheap to redo).
MAX_ADAPTED = 1024


@dataclass(frozen=True, slots=True)
class SimDeviceSpec:
    """One simulated device: what it is, which profile it speaks and where it listens."""

    id: str
    device_class: str
    profile_model: str
    protocol: str
    host: str = "127.0.0.1"
    port: int = 0
    unit_id: int | None = None
    community: str | None = None
    v3: dict[str, Any] | None = field(default=None, repr=False)
    zone: str | None = None
    settings: tuple[tuple[str, str], ...] = ()  # the site file's profile settings (e.g. resolution x100)


@dataclass
class _Served:
    """A spec bound to its server, with what was last pushed."""

    spec: SimDeviceSpec
    profile: ModbusProfile | SnmpProfile
    server: ModbusSimServer | SnmpSimAgent
    names: set[str]
    pushed: dict[str, Value] = field(default_factory=dict)
    silent: bool = False
    adapted: dict[tuple[str, str], Any] = field(default_factory=dict)

    async def push(self, values: dict[str, Value]) -> None:
        if isinstance(self.server, ModbusSimServer):
            assert self.spec.unit_id is not None
            await self.server.set_values(self.spec.unit_id, values)
        else:
            await self.server.set_values(_snmp_key(self.spec), values)

    def set_silent(self, silent: bool) -> None:
        if isinstance(self.server, ModbusSimServer):
            assert self.spec.unit_id is not None
            self.server.set_silent(self.spec.unit_id, silent)
        else:
            self.server.set_silent(_snmp_key(self.spec), silent)
        self.silent = silent

    def adapt(self, metric: str, value: Value) -> Any:
        """The value this device model can serve for `metric` (a substitute state), or _SKIP."""
        key = (metric, repr(value))
        if key not in self.adapted:
            if len(self.adapted) >= MAX_ADAPTED:
                self.adapted.clear()
            choice: Any = _SKIP
            subs = SUBSTITUTES.get(value, ()) if isinstance(value, str) else ()
            for candidate in (value, *subs):
                if _encodable(self.profile, metric, candidate):
                    choice = candidate
                    break
            if choice is _SKIP:
                log.warning(
                    "%s (%s): cannot serve %s=%r; keeping the previous value",
                    self.spec.id,
                    self.profile.model,
                    metric,
                    value,
                )
            self.adapted[key] = choice
        return self.adapted[key]


def _snmp_key(spec: SimDeviceSpec) -> str:
    return spec.community or spec.id


def _served_names(profile: ModbusProfile | SnmpProfile) -> set[str]:
    """Metric names a reader of this profile produces: what the simulator may set."""
    if isinstance(profile, ModbusProfile):
        return set(profile.metric_names())
    return {m.name for m in decode(profile, encoded_values(encode_profile(profile, {})))}


def _encodable(profile: ModbusProfile | SnmpProfile, metric: str, value: Value) -> bool:
    """Dry run of the simulator's encoder: an unrepresentable value must never reach a live server."""
    try:
        if isinstance(profile, SnmpProfile):
            encode_profile(profile, {metric: value})
            return True
        for wp in profile.wire_points():
            if metric in wp.point.metric_names():
                grouped = wp.point.type in ("bitfield", "nibbles")
                encode_point(wp, {metric: value} if grouped else value)
                return True
    except Exception:  # any encoder failure (enum, range, struct packing) means "cannot serve"
        return False
    return False


class SimulatedRoom:
    """Serves a RoomModel over real Modbus TCP and SNMP endpoints, with scenario control."""

    def __init__(
        self,
        specs: Sequence[SimDeviceSpec],
        registry: ProfileRegistry,
        tick_s: float = 1.0,
        speed: float = 1.0,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        *,
        trap_target: tuple[str, int] | None = None,
        trap_community: str | None = None,
    ) -> None:
        """`clock`: the time the model follows (wall clock by default); `trap_target`: SNMP trap receiver.

        With `trap_target` set, SNMP devices send the traps their profiles declare there (community
        `trap_community`, else each device's own); Modbus devices have no traps.
        """
        self.specs = list(specs)
        self.registry = registry
        self.tick_s = tick_s
        self._clock = clock
        self.model = RoomModel(
            [DeviceDecl(s.id, str(s.device_class), s.zone) for s in self.specs],
            seed=seed,
            speed=speed,
            start=clock(),
        )
        self._served: list[_Served] = []
        self._servers: list[ModbusSimServer | SnmpSimAgent] = []
        self._task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self.recent_events: deque[SimEvent] = deque(maxlen=_MAX_EVENTS)
        # Nobody drains these under `roomguard simulate`: keep the newest only, as recent_events does.
        self._undrained: deque[SimEvent] = deque(maxlen=_MAX_EVENTS)
        self._lock = asyncio.Lock()
        self._traps = RoomTraps(trap_target, trap_community) if trap_target is not None else None
        self._build()

    def _build(self) -> None:
        endpoints: dict[tuple[str, str, int], ModbusSimServer | SnmpSimAgent] = {}
        initial = self.model.snapshot()
        for spec in self.specs:
            # A unit configured x100 is served at x100: the simulator speaks what the site file says.
            profile = self.registry.for_unit(spec.profile_model, dict(spec.settings))
            if profile.protocol != spec.protocol:
                raise ValueError(
                    f"device {spec.id}: profile {profile.model} speaks {profile.protocol}, "
                    f"not {spec.protocol}"
                )
            where = (spec.protocol, spec.host, spec.port)
            server = endpoints.get(where)
            if server is None:
                server = (
                    ModbusSimServer(spec.host, spec.port)
                    if spec.protocol == "modbus"
                    else SnmpSimAgent(spec.host, spec.port)
                )
                endpoints[where] = server
            served = _Served(spec, profile, server, _served_names(profile))
            values = self._servable(served, initial[spec.id])
            if isinstance(server, ModbusSimServer):
                if spec.unit_id is None or not isinstance(profile, ModbusProfile):
                    raise ValueError(f"device {spec.id}: a Modbus device needs a unit_id")
                server.add_device(spec.unit_id, profile, values)
            else:
                if not isinstance(profile, SnmpProfile):
                    raise ValueError(f"device {spec.id}: profile {profile.model} is not an SNMP profile")
                server.add_device(_snmp_key(spec), profile, values, v3=_v3(spec))
            served.pushed.update(values)
            self._served.append(served)
        self._servers = list(endpoints.values())

    def _servable(self, served: _Served, values: dict[str, Value]) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for metric, value in values.items():
            if metric in served.names:
                v = served.adapt(metric, value)
                if v is not _SKIP:
                    out[metric] = v
        return out

    @staticmethod
    def _mute_for_fault(served: _Served, values: dict[str, Value], servable: dict[str, Value]) -> bool:
        """A faulted device whose protocol map has no way to say 'unavailable' stops answering instead.

        A cheap RS-485 probe (SHT20) has no sentinel value: when its sensing element dies, the module
        stops replying, which the poller sees as a timeout.
        """
        wanted = [m for m, v in values.items() if v is None and m in served.names]
        return bool(wanted) and not any(m in servable for m in wanted)

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every endpoint and the tick loop."""
        for server in self._servers:
            await server.start()
        self._task = asyncio.create_task(self._loop(), name="simulated-room")

    async def stop(self) -> None:
        """Stop the tick loop, the HTTP control and every endpoint."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for server in self._servers:
            await server.stop()

    def endpoint(self, device: str) -> tuple[str, int]:
        """(host, real port) serving a device (after start)."""
        for s in self._served:
            if s.spec.id == device:
                return s.spec.host, s.server.port
        raise KeyError(f"unknown device {device!r}")

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a bad tick must not kill the simulator; log and keep serving
                log.exception("simulated room tick failed")
            await asyncio.sleep(self.tick_s)

    async def tick(self, now: float | None = None) -> None:
        """Step the model to `now` (default: the clock) and push changed values to the servers."""
        async with self._lock:
            self.model.step(self._clock() if now is None else now)
            events = self.model.drain_events()
            self.recent_events.extend(events)
            self._undrained.extend(events)
            silent = self.model.silent_devices
            for served in self._served:
                model_values = self.model.values(served.spec.id)
                if self.model.faulted(served.spec.id):
                    # The whole device reads unavailable, including metrics the physics does not model.
                    model_values = dict.fromkeys(served.names)
                values = self._servable(served, model_values)
                changed = {m: v for m, v in values.items() if m not in served.pushed or served.pushed[m] != v}
                if changed:
                    try:
                        await served.push(changed)
                        served.pushed.update(changed)
                    except Exception:  # one device's encoder problem must not stop the others
                        log.exception("%s: pushing %s failed", served.spec.id, sorted(changed))
                want = served.spec.id in silent or self._mute_for_fault(served, model_values, values)
                if want != served.silent:
                    served.set_silent(want)
                await self._send_traps(served, model_values)

    async def _send_traps(self, served: _Served, values: dict[str, Value]) -> None:
        """Traps this device owes after the tick (a silent device sends none, as a dead card would)."""
        if (
            self._traps is None
            or served.silent
            or not isinstance(served.server, SnmpSimAgent)
            or not isinstance(served.profile, SnmpProfile)
        ):
            return
        await self._traps.device_tick(
            served.spec.id,
            served.server,
            _snmp_key(served.spec),
            served.profile,
            values,
            served.pushed,
            self.model.sim_time,
        )

    def drain_events(self) -> list[SimEvent]:
        """Access-granted events since the last call, at most the newest 200 (for a door tracker)."""
        events = list(self._undrained)
        self._undrained.clear()
        return events

    # --- scenarios ---------------------------------------------------------------------------------

    def trigger(self, scenario: str, device: str | None = None) -> dict[str, Value]:
        """Start a scenario now; raises UnknownScenario / ValueError with the valid choices."""
        self.model.step(self._clock())
        target = self.model.trigger(scenario, device)
        return {"scenario": scenario, "device": target or None}

    def clear(self, scenario: str, device: str | None = None) -> bool:
        """End a scenario (every target, or one device); False if it was not active."""
        self.model.step(self._clock())
        return self.model.clear(scenario, device)

    def state(self) -> dict[str, Any]:
        """JSON-able view: time, active scenarios, silent devices, every device's current values."""
        devices: dict[str, Any] = {}
        for s in self._served:
            devices[s.spec.id] = {
                "class": str(s.spec.device_class),
                "profile": s.spec.profile_model,
                "protocol": s.spec.protocol,
                "endpoint": f"{s.spec.host}:{s.server.port}",
                "unit_id": s.spec.unit_id,
                "zone": s.spec.zone,
                "silent": s.spec.id in self.model.silent_devices,
                "values": self.model.values(s.spec.id),
            }
        return {
            "time": self._clock(),
            "sim_time_s": round(self.model.sim_time, 1),
            "speed": self.model.speed,
            "active": self.model.active(),
            "silent": sorted(self.model.silent_devices),
            "devices": devices,
            "events": [
                {"ts": e.ts, "device": e.device, "kind": e.kind, **e.detail} for e in self.recent_events
            ],
        }

    # --- HTTP control ------------------------------------------------------------------------------

    async def start_http(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve GET /state, GET /scenarios, POST and DELETE /scenarios/{name}[?device=]; returns the port."""
        app = web.Application()
        app.router.add_get("/state", self._h_state)
        app.router.add_get("/scenarios", self._h_scenarios)
        app.router.add_post("/scenarios/{name}", self._h_trigger)
        app.router.add_delete("/scenarios/{name}", self._h_clear)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        addr = runner.addresses[0]
        self.http_port = int(addr[1])
        return self.http_port

    async def _h_state(self, request: web.Request) -> web.Response:
        return _json(self.state())

    async def _h_scenarios(self, request: web.Request) -> web.Response:
        active = {a["scenario"] for a in self.model.active()}
        return _json(
            [
                {
                    "name": s.name,
                    "target_class": s.target_class,
                    "zh": s.zh,
                    "en": s.en,
                    "active": s.name in active,
                }
                for s in SCENARIOS.values()
            ]
        )

    async def _h_trigger(self, request: web.Request) -> web.Response:
        try:
            result = self.trigger(request.match_info["name"], request.query.get("device"))
        except ValueError as exc:
            return _bad(exc)
        await self.tick()  # on the wire now, not at the next tick
        return _json({**result, "active": self.model.active()})

    async def _h_clear(self, request: web.Request) -> web.Response:
        try:
            was = self.clear(request.match_info["name"], request.query.get("device"))
        except ValueError as exc:
            return _bad(exc)
        await self.tick()
        name = request.match_info["name"]
        return _json({"cleared": name, "was_active": was, "active": self.model.active()})


def _v3(spec: SimDeviceSpec) -> SnmpV3 | None:
    if spec.v3 is None:
        return None
    allowed = {f.name for f in fields(SnmpV3)}
    return SnmpV3(**{k: v for k, v in spec.v3.items() if k in allowed})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=partial(json.dumps, ensure_ascii=False))


def _bad(exc: ValueError) -> web.Response:
    body: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, UnknownScenario):
        body["valid"] = list(SCENARIOS)
    return _json(body, status=400)
