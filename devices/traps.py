"""Asyncio SNMP trap receiver (v2c communities, v3 users) decoding UPS-MIB and door traps into TrapEvents."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv

from devices.reading import DeviceClass, Value
from devices.snmp_codec import SnmpValue
from devices.snmp_server import listening_engine
from devices.snmp_transport import AUTH_PROTOCOLS, PRIV_PROTOCOLS, SnmpV3, from_pysnmp

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
UPS_TRAPS = "1.3.6.1.2.1.33.2"
UPS = "1.3.6.1.2.1.33.1"
# NETBOTZV2-MIB doorSwitchSensorTable value column (-1 null, 0 open, 1 closed).
NETBOTZ_DOOR_VALUE = "1.3.6.1.4.1.5528.100.4.2.2.1.2."

UPS_TRAP_NAMES = {
    f"{UPS_TRAPS}.1": "upsTrapOnBattery",
    f"{UPS_TRAPS}.2": "upsTrapTestCompleted",
    f"{UPS_TRAPS}.3": "upsTrapAlarmEntryAdded",
    f"{UPS_TRAPS}.4": "upsTrapAlarmEntryRemoved",
}
# RFC 1628 upsWellKnownAlarms .33.1.6.3.N, as lower_snake names.
UPS_ALARMS = {
    1: "battery_bad", 2: "on_battery", 3: "low_battery", 4: "depleted_battery", 5: "temp_bad",
    6: "input_bad", 7: "output_bad", 8: "output_overload", 9: "on_bypass", 10: "bypass_bad",
    11: "output_off_as_requested", 12: "ups_off_as_requested", 13: "charger_failed",
    14: "ups_output_off", 15: "ups_system_off", 16: "fan_failure", 17: "fuse_failure",
    18: "general_fault", 19: "diagnostic_test_failed", 20: "communications_lost", 21: "awaiting_power",
    22: "shutdown_pending", 23: "shutdown_imminent", 24: "test_in_progress",
}
_TEST_RESULTS = {1: "passed", 2: "warning", 3: "failed", 4: "aborted", 5: "in_progress", 6: "none"}


@dataclass(frozen=True, slots=True)
class TrapEvent:
    """One received notification, decoded where we know the MIB."""

    ts: datetime
    source: str
    trap_oid: str
    name: str
    varbinds: dict[str, SnmpValue]
    device_class: DeviceClass | None = None
    event: dict[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrapV3User:
    """A v3 user allowed to send traps; traps are authoritative at the sender, so its engine id is needed."""

    credentials: SnmpV3
    engine_id: str  # hex, as configured on the device (snmptrap -e / SNMP engine ID)


def _first(vbs: Mapping[str, SnmpValue], prefix: str) -> SnmpValue | None:
    for oid, v in vbs.items():
        if oid == prefix or oid.startswith(prefix + "."):
            return v
    return None


def _int(v: SnmpValue | None) -> int | None:
    return v if isinstance(v, int) else None


def decode_trap(trap_oid: str, varbinds: dict[str, SnmpValue], source: str,
                ts: datetime | None = None) -> TrapEvent:
    """Name and decode a trap from its snmpTrapOID and varbinds (pure)."""
    ts = ts or datetime.now(UTC)
    name = UPS_TRAP_NAMES.get(trap_oid, trap_oid)
    event: dict[str, Value] = {}
    device_class: DeviceClass | None = None
    if trap_oid.startswith(UPS_TRAPS + "."):
        device_class = DeviceClass.UPS
        if name == "upsTrapOnBattery":
            minutes = _int(_first(varbinds, f"{UPS}.2.3"))
            event = {"on_battery": True,
                     "runtime_s": minutes * 60 if minutes is not None else None,
                     "seconds_on_battery_s": _int(_first(varbinds, f"{UPS}.2.2"))}
        elif name == "upsTrapTestCompleted":
            code = _int(_first(varbinds, f"{UPS}.7.3"))
            detail = _first(varbinds, f"{UPS}.7.4")
            event = {"test_result": _TEST_RESULTS.get(code or 0, "unknown"),
                     "test_detail": detail if isinstance(detail, str) else None}
        elif name in ("upsTrapAlarmEntryAdded", "upsTrapAlarmEntryRemoved"):
            descr = _first(varbinds, f"{UPS}.6.2.1.2")
            arc = str(descr).rsplit(".", 1)[-1] if descr is not None else ""
            alarm_id = _int(_first(varbinds, f"{UPS}.6.2.1.1"))
            if alarm_id is None and descr is not None:  # the id is also the descr varbind's index
                alarm_id = int(next(o for o, v in varbinds.items() if v is descr).rsplit(".", 1)[-1])
            event = {"alarm": UPS_ALARMS.get(int(arc), f"alarm_{arc}") if arc.isdigit() else "unknown",
                     "alarm_id": alarm_id, "active": name == "upsTrapAlarmEntryAdded"}
    door = next((v for o, v in varbinds.items() if o.startswith(NETBOTZ_DOOR_VALUE)), None)
    if door is not None:
        device_class = DeviceClass.DOOR
        name = "doorSwitchChange" if name == trap_oid else name
        event = {"door_open": None if door == -1 or not isinstance(door, int) else door == 0}
    return TrapEvent(ts, source, trap_oid, name, varbinds, device_class, event)


TrapCallback = Callable[[TrapEvent], None]


class TrapReceiver:
    """Listens for SNMP notifications; each decoded TrapEvent goes to `queue` and to `callback`."""

    def __init__(self, host: str = "0.0.0.0", port: int = 162, communities: Sequence[str] = ("public",),
                 v3_users: Sequence[TrapV3User] = (), callback: TrapCallback | None = None,
                 queue_size: int = 10_000) -> None:
        self.host = host
        self._port = port
        self.communities = list(communities)
        self.v3_users = list(v3_users)
        self.callback = callback
        self.queue: asyncio.Queue[TrapEvent] = asyncio.Queue(queue_size)
        self.dropped = 0
        self._engine: engine.SnmpEngine | None = None

    @property
    def port(self) -> int:
        """UDP port listened on (the real one after start when 0 was given)."""
        return self._port

    async def start(self) -> None:
        """Bind and start receiving."""
        eng, self._port, listening = listening_engine(self.host, self._port)
        for i, community in enumerate(self.communities):
            config.add_v1_system(eng, f"trap-area-{i}", community)
        for u in self.v3_users:
            c = u.credentials
            config.add_v3_user(eng, c.user, AUTH_PROTOCOLS[c.auth_protocol], c.auth_key,
                               PRIV_PROTOCOLS[c.priv_protocol], c.priv_key,
                               securityEngineId=bytes.fromhex(u.engine_id.removeprefix("0x")))
        ntfrcv.NotificationReceiver(eng, self._on_trap)
        self._engine = eng
        await listening

    def _on_trap(self, snmp_engine: Any, state_ref: Any, ctx_engine_id: Any, ctx_name: Any,
                 var_binds: Any, cb_ctx: Any) -> None:
        exec_ctx = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        addr = exec_ctx.get("transportAddress")
        source = f"{addr[0]}:{addr[1]}" if addr else "?"
        vbs = {str(o): from_pysnmp(v) for o, v in var_binds}
        trap_oid = str(vbs.pop(SNMP_TRAP_OID, ""))
        vbs.pop(SYS_UPTIME, None)
        ev = decode_trap(trap_oid, vbs, source)
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:  # a trap storm must not grow memory without bound; counted
            self.dropped += 1
        if self.callback is not None:
            self.callback(ev)

    async def stop(self) -> None:
        """Close the port."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        await asyncio.sleep(0)
