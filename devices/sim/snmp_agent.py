"""Our own SNMP agent (pysnmp command responder) serving SNMP profiles, for tests and the room simulator."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyasn1.codec.ber import encoder
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    NotificationType,
    ObjectIdentity,
    UdpTransportTarget,
    send_notification,
)
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c
from pysnmp.smi.instrum import AbstractMibInstrumController

from devices.reading import Value
from devices.snmp_codec import Encoded, Oid, encode_profile
from devices.snmp_profile import SnmpProfile
from devices.snmp_server import listening_engine
from devices.snmp_transport import AUTH_PROTOCOLS, PRIV_PROTOCOLS, SnmpV3, shared_engine
from devices.traps import SNMP_TRAP_OID, SYS_UPTIME

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
_NET_SNMP_LINUX = "1.3.6.1.4.1.8072.3.2.10"  # sysObjectID for profiles that match on MIB support only

_PYSNMP_TYPES: dict[str, Any] = {
    "integer": rfc1902.Integer32,
    "gauge": rfc1902.Gauge32,
    "counter": rfc1902.Counter32,
    "timeticks": rfc1902.TimeTicks,
    "string": rfc1902.OctetString,
    "oid": rfc1902.ObjectName,
}


def to_pysnmp(enc: Encoded) -> Any:
    """(snmp type, raw) → the pysnmp value object."""
    typ, raw = enc
    if typ == "nosuch" or raw is None:
        return rfc1905.noSuchInstance
    return _PYSNMP_TYPES[typ](raw)


@dataclass
class _Device:
    """One simulated device: its profile, current metric values and the OID map served."""

    key: str
    profile: SnmpProfile
    values: dict[str, Value]
    v3: SnmpV3 | None
    silent: bool = False
    oids: list[tuple[int, ...]] = field(default_factory=list)
    by_oid: dict[tuple[int, ...], Any] = field(default_factory=dict)

    def rebuild(self) -> None:
        """Re-encode the profile and the values into the sorted OID map."""
        encoded: dict[str, Encoded] = {
            SYS_DESCR: ("string", self.profile.title),
            SYS_OBJECT_ID: ("oid", (self.profile.match.sys_object_ids or [_NET_SNMP_LINUX])[0]),
            SYS_UPTIME: ("timeticks", 0),  # replaced by the live uptime at request time
            SYS_NAME: ("string", self.key),
        }
        encoded.update(encode_profile(self.profile, self.values))
        by_oid = {
            tuple(int(x) for x in oid.split(".")): to_pysnmp(enc)
            for oid, enc in encoded.items()
            if enc[0] != "nosuch"
        }
        self.oids = sorted(by_oid)
        self.by_oid = by_oid


_UPTIME_KEY = tuple(int(x) for x in SYS_UPTIME.split("."))


class _Router(AbstractMibInstrumController):  # type: ignore[misc]
    """Answers every context from the device the request belongs to (community, context or v3 user)."""

    def __init__(self, agent: SnmpSimAgent) -> None:
        self.agent = agent

    def read_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        dev = self.agent._device_for(ctx["snmpEngine"])
        out = []
        for name, _ in var_binds:
            key = tuple(name)
            val = dev.by_oid.get(key, rfc1905.noSuchInstance) if dev else rfc1905.noSuchObject
            out.append((name, self.agent._live(key, val)))
        return out

    def read_next_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        dev = self.agent._device_for(ctx["snmpEngine"])
        out = []
        for name, _ in var_binds:
            oids = dev.oids if dev else []
            i = bisect.bisect_right(oids, tuple(name))
            if i >= len(oids):
                out.append((name, rfc1905.endOfMibView))
            else:
                nxt = oids[i]
                out.append((rfc1902.ObjectName(nxt), self.agent._live(nxt, dev.by_oid[nxt])))  # type: ignore[union-attr]
        return out

    def write_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        raise NotImplementedError("the simulator is read-only; use set_values()")


class _SilenceMixin:
    """Drops requests for a silenced device (no response at all → the client times out)."""

    cbCtx: Any

    def handle_management_operation(
        self, snmpEngine: Any, stateReference: Any, contextName: Any, PDU: Any
    ) -> None:
        agent: SnmpSimAgent = self.cbCtx
        dev = agent._device_for(snmpEngine)
        if dev is not None and dev.silent:
            self.release_state_information(stateReference)  # type: ignore[attr-defined]
            return
        super().handle_management_operation(snmpEngine, stateReference, contextName, PDU)  # type: ignore[misc]


class _Get(_SilenceMixin, cmdrsp.GetCommandResponder):  # type: ignore[misc]
    pass


class _Next(_SilenceMixin, cmdrsp.NextCommandResponder):  # type: ignore[misc]
    pass


class _Bulk(_SilenceMixin, cmdrsp.BulkCommandResponder):  # type: ignore[misc]
    pass


class _AnyContext(context.SnmpContext):  # type: ignore[misc]
    """Every context name goes to the router (the device key is resolved per request)."""

    def __init__(self, snmp_engine: Any, router: _Router) -> None:
        super().__init__(snmp_engine)
        self.router = router

    def get_mib_instrum(self, contextName: bytes = b"") -> Any:
        return self.router


class SnmpSimAgent:
    """SNMP v2c/v3 agent serving one or more simulated devices, keyed by community / context name."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._devices: dict[str, _Device] = {}
        self._by_user: dict[str, str] = {}
        self._engine: engine.SnmpEngine | None = None
        self._started = time.monotonic()

    @property
    def started(self) -> bool:
        """True between start() and stop()."""
        return self._engine is not None and self._engine.transport_dispatcher is not None

    @property
    def port(self) -> int:
        """UDP port served (the real one after start when 0 was given)."""
        return self._port

    def add_device(
        self,
        key: str,
        profile: SnmpProfile,
        values: Mapping[str, Value] | None = None,
        v3: SnmpV3 | None = None,
    ) -> None:
        """Serve `profile` under community/context `key` (and v3 user `v3.user` if given)."""
        if key in self._devices:
            raise ValueError(f"device {key!r} already added")
        dev = _Device(key, profile, dict(values or {}), v3)
        dev.rebuild()
        self._devices[key] = dev
        if v3 is not None:
            self._by_user[v3.user] = key
        if self._engine is not None:
            self._configure(dev)

    async def set_values(self, key: str, values: Mapping[str, Value]) -> None:
        """Change metric values served by device `key` (None → sentinel / noSuchInstance)."""
        dev = self._devices[key]
        dev.values.update(values)
        dev.rebuild()

    def set_silent(self, key: str, silent: bool) -> None:
        """Stop (or resume) answering requests for device `key`."""
        self._devices[key].silent = silent

    async def start(self) -> None:
        """Bind the UDP port and start answering."""
        eng, self._port, listening = listening_engine(self.host, self._port)
        self._engine = eng
        for dev in self._devices.values():
            self._configure(dev)
        ctx = _AnyContext(eng, _Router(self))
        for responder in (_Get, _Next, _Bulk):
            responder(eng, ctx, self)
        await listening  # endpoint is up before start() returns
        self._started = time.monotonic()

    def _configure(self, dev: _Device) -> None:
        assert self._engine is not None
        config.add_v1_system(self._engine, dev.key, dev.key, contextName=dev.key, securityName=dev.key)
        if dev.v3 is not None:
            config.add_v3_user(
                self._engine,
                dev.v3.user,
                AUTH_PROTOCOLS[dev.v3.auth_protocol],
                dev.v3.auth_key,
                PRIV_PROTOCOLS[dev.v3.priv_protocol],
                dev.v3.priv_key,
            )

    async def stop(self) -> None:
        """Close the port."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        await asyncio.sleep(0)

    def _device_for(self, snmp_engine: Any) -> _Device | None:
        exec_ctx = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        ctx_name = bytes(exec_ctx["contextName"]).decode("utf-8", "replace")
        if ctx_name in self._devices:
            return self._devices[ctx_name]
        sec_name = bytes(exec_ctx["securityName"]).decode("utf-8", "replace")
        key = self._by_user.get(sec_name, sec_name)
        return self._devices.get(key)

    def _live(self, key: tuple[int, ...], value: Any) -> Any:
        if key == _UPTIME_KEY:
            return rfc1902.TimeTicks(int((time.monotonic() - self._started) * 100) % (2**32))
        return value

    async def send_trap(
        self,
        target_host: str,
        target_port: int,
        community: str,
        trap_oid: str,
        varbinds: Mapping[str, int | str | Oid] | Sequence[tuple[str, Encoded]] = (),
    ) -> None:
        """Send an SNMPv2c trap (e.g. upsTrapOnBattery, a door switch change) to a receiver.

        Once the agent is started the trap leaves from its own socket: a real card's traps come from
        its own address, which is how a receiver tells devices apart. Before that, from an ephemeral port.
        """
        items = varbinds.items() if isinstance(varbinds, Mapping) else varbinds
        binds = [(rfc1902.ObjectName(oid), _trap_value(v)) for oid, v in items]
        eng = self._engine
        if eng is not None and self.started:
            uptime = int((time.monotonic() - self._started) * 100) % (2**32)  # the agent's sysUpTime
            pdu = v2c.TrapPDU()
            v2c.apiTrapPDU.set_defaults(pdu)
            v2c.apiTrapPDU.set_varbinds(
                pdu,
                [
                    (rfc1902.ObjectName(SYS_UPTIME), rfc1902.TimeTicks(uptime)),
                    (rfc1902.ObjectName(SNMP_TRAP_OID), rfc1902.ObjectName(trap_oid)),
                    *binds,
                ],
            )
            msg = v2c.Message()
            v2c.apiMessage.set_defaults(msg)
            v2c.apiMessage.set_community(msg, community)
            v2c.apiMessage.set_pdu(msg, pdu)
            target = (target_host, target_port)
            eng.transport_dispatcher.send_message(encoder.encode(msg), udp.DOMAIN_NAME, target)
            return
        err, *_ = await send_notification(
            shared_engine(),
            CommunityData(community, mpModel=1),  # noqa: S508 - door/UPS cards send v2c
            await UdpTransportTarget.create((target_host, target_port)),
            ContextData(),
            "trap",
            NotificationType(ObjectIdentity(trap_oid)).add_varbinds(*binds),
            lookupMib=False,
        )
        if err:
            raise RuntimeError(f"trap to {target_host}:{target_port} failed: {err}")


def _trap_value(v: Any) -> Any:
    if isinstance(v, tuple):
        return to_pysnmp(v)
    if isinstance(v, Oid):
        return rfc1902.ObjectName(str(v))
    if isinstance(v, bool | int):
        return rfc1902.Integer32(int(v))
    return rfc1902.OctetString(str(v))
