"""Asyncio SNMP trap receiver (v1/v2c communities, v3 users) decoding traps into TrapEvents.

What a trap means is not written here: each device profile declares the traps its model sends
(`traps:` in the YAML, schema in devices/trap_spec.py) and `TrapDecoder` is built from those.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import rfc1902

from devices.profile_metrics import profile_metrics
from devices.reading import DeviceClass, Value
from devices.snmp_codec import SnmpValue
from devices.snmp_profile import SnmpProfile
from devices.snmp_server import listening_engine
from devices.snmp_transport import AUTH_PROTOCOLS, PRIV_PROTOCOLS, SnmpV3, from_pysnmp
from devices.trap_rejects import TrapRejects, refusal
from devices.trap_spec import TrapDef

if TYPE_CHECKING:
    from devices.registry import Profile

_LOG = logging.getLogger(__name__)
USM, AUTH_PRIV = 3, 3  # securityModel and securityLevel numbers (RFC 3411 §5)
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
# RFC 3584 §3.1 (4): a v1 trap converted to v2 carries the community it came with as snmpTrapCommunity.0;
# that is a credential, so it never reaches an event (screen, MQTT).
SNMP_TRAP_COMMUNITY = "1.3.6.1.6.3.18.1.4.0"


@dataclass(frozen=True, slots=True)
class TrapEvent:
    """One received notification, decoded where a profile declares it."""

    ts: datetime
    source: str
    trap_oid: str  # snmpTrapOID as received; a v1 trap's is enterprise.0.specific (RFC 3584 §3.1)
    name: str
    varbinds: dict[str, SnmpValue]
    device_class: DeviceClass | None = None
    event: dict[str, Value] = field(default_factory=dict)
    means: str | None = None  # the profile's `means:` (on_battery, door_change, …); None when unknown
    # Varbinds no field is decoded from, by OID: all of an unknown trap's, and of a known one what it only
    # carries (upsConfigLowBattTime) or the profile does not declare; shown and published beside the fields.
    carried: dict[str, SnmpValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrapV3User:
    """A v3 user allowed to send traps; traps are authoritative at the sender, so its engine id is needed."""

    credentials: SnmpV3
    engine_id: str  # hex, as configured on the device (snmptrap -e / SNMP engine ID)


class TrapDefinitionError(ValueError):
    """Two profiles declare the same trap OID differently; the message names both and the OID."""


@dataclass(frozen=True, slots=True)
class _Known:
    """A trap definition as the receiver uses it, with the class resolved and who declared it."""

    trap: TrapDef
    device_class: DeviceClass
    models: tuple[str, ...]


class TrapDecoder:
    """Names and decodes traps by the `traps:` sections of device profiles (pure once built)."""

    def __init__(self, known: Iterable[_Known] = ()) -> None:
        self._by_oid = {k.trap.oid: k for k in known}
        self._by_varbind = [k for k in self._by_oid.values() if k.trap.match_varbind]

    @classmethod
    def from_profiles(cls, profiles: Iterable[Profile]) -> TrapDecoder:
        """Merge every SNMP profile's traps; several profiles may declare a standard trap if they agree."""
        found: dict[str, _Known] = {}
        for p in profiles:
            if not isinstance(p, SnmpProfile):
                continue
            for t in p.traps:
                k = _Known(t, t.device_class or p.device_class, (p.model,))
                prev = found.get(t.oid)
                if prev is None:
                    found[t.oid] = k
                elif _meaning(prev) != _meaning(k):
                    raise TrapDefinitionError(
                        f"trap {t.oid}: profile {p.model} declares it ({t.name}) differently from "
                        f"{', '.join(prev.models)} ({prev.trap.name}); definitions of one trap OID must agree"
                    )
                else:
                    found[t.oid] = _Known(prev.trap, prev.device_class, (*prev.models, p.model))
        return cls(found.values())

    def names(self) -> dict[str, str]:
        """Trap OID → name, for every trap known."""
        return {oid: k.trap.name for oid, k in self._by_oid.items()}

    def models(self, trap_oid: str) -> tuple[str, ...]:
        """The profiles that declare `trap_oid` (empty when none does)."""
        k = self._lookup(trap_oid)
        return k.models if k else ()

    def _lookup(self, trap_oid: str) -> _Known | None:
        k = self._by_oid.get(trap_oid)
        if k is None and (smiv2 := smiv2_trap_oid(trap_oid)) is not None:
            k = self._by_oid.get(smiv2)
        return k

    def decode(
        self, trap_oid: str, varbinds: dict[str, SnmpValue], source: str, ts: datetime | None = None
    ) -> TrapEvent:
        """Name and decode a trap from its snmpTrapOID and varbinds; an unknown trap keeps its OID as name."""
        ts = ts or datetime.now(UTC)
        k = self._lookup(trap_oid) or next(
            (k for k in self._by_varbind if (kv := k.trap.key_varbind) and kv.find(varbinds)), None
        )
        if k is None:
            return TrapEvent(ts, source, trap_oid, trap_oid, varbinds, carried=dict(varbinds))
        used = k.trap.decoded_oids(varbinds)
        return TrapEvent(
            ts,
            source,
            trap_oid,
            k.trap.name,
            varbinds,
            k.device_class,
            k.trap.decode(varbinds),
            k.trap.means,
            {oid: v for oid, v in varbinds.items() if oid not in used},
        )


def smiv2_trap_oid(trap_oid: str) -> str | None:
    """The SMIv2 notification OID E.N a v1-converted trap OID E.0.N stands for; None if not of that form."""
    # RFC 3584 §3.1 (2) turns a v1 trap (enterprise E, specific-trap N) into snmpTrapOID E.0.N, and
    # §3.2 (1) sends an SMIv2 notification E.N whose next-to-last arc is not 0 as that same v1 trap.
    # So E.0.N from a v1 agent is E.N when the MIB puts its notifications directly under E (UPS-MIB:
    # upsTrapOnBattery is upsTraps.1 = 1.3.6.1.2.1.33.2.1, a v1 UPS card sends upsTraps/1).
    head, _, specific = trap_oid.rpartition(".")
    enterprise, _, zero = head.rpartition(".")
    return f"{enterprise}.{specific}" if zero == "0" and enterprise and specific else None


def _meaning(k: _Known) -> tuple[DeviceClass, dict[str, Any]]:
    # When a trap is sent is each model's own business; what it means must be the same for all.
    return k.device_class, k.trap.model_dump(exclude={"send", "device_class"})


@cache
def builtin_trap_decoder() -> TrapDecoder:
    """The decoder for the shipped profiles (built once per process)."""
    from devices.registry import ProfileRegistry

    return TrapDecoder.from_profiles(ProfileRegistry.builtin().all())


def decode_trap(
    trap_oid: str, varbinds: dict[str, SnmpValue], source: str, ts: datetime | None = None
) -> TrapEvent:
    """Name and decode a trap by the shipped profiles (pure)."""
    return builtin_trap_decoder().decode(trap_oid, varbinds, source, ts)


def trap_problems(profile: SnmpProfile) -> list[str]:
    """What the simulator could not act on in a profile's `traps:` (send conditions that are no metric)."""
    have = profile_metrics(profile)
    out: list[str] = []
    for t in profile.traps:
        if t.send is None:
            continue
        for name in (t.send.when, *t.send.repeat_unless):
            if name not in have:
                out.append(
                    f"{profile.model}: trap {t.name}: send names {name!r}, not a metric of the profile "
                    f"(valid choices: {', '.join(sorted(have))})"
                )
    return out


def _plain(value: Any) -> SnmpValue:
    # pysnmp's v1→v2 conversion (RFC 3584 §3.1 (4)) appends snmpTrapAddress.0 as a v1 IpAddress, which
    # is not the SNMPv2 class from_pysnmp knows: recognise the address by its ASN.1 tag instead.
    if getattr(value, "tagSet", None) == rfc1902.IpAddress.tagSet:
        return ".".join(str(b) for b in value.asOctets())
    return from_pysnmp(value)


TrapCallback = Callable[[TrapEvent], None]


class TrapReceiver:
    """Listens for SNMP notifications; each decoded TrapEvent goes to `queue` and to `callback`."""

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 162,
        communities: Sequence[str] = ("public",),
        v3_users: Sequence[TrapV3User] = (),
        callback: TrapCallback | None = None,
        queue_size: int = 10_000,
        decoder: TrapDecoder | None = None,
        rejects: TrapRejects | None = None,
    ) -> None:
        """`decoder`: how traps are named and decoded (default: by the shipped profiles).

        `rejects` counts what is refused (wrong credentials, malformed) per source; default a new one.
        """
        self.host = host
        self.decoder = decoder or builtin_trap_decoder()
        self._port = port
        self.communities = list(communities)
        self.v3_users = list(v3_users)
        self.callback = callback
        self.queue: asyncio.Queue[TrapEvent] = asyncio.Queue(queue_size)
        self.dropped = 0
        self.received = 0  # notifications accepted and decoded
        self.rejects = rejects or TrapRejects()
        self._engine: engine.SnmpEngine | None = None
        self._garbage_counters: list[Any] = []

    @property
    def port(self) -> int:
        """UDP port listened on (the real one after start when 0 was given)."""
        return self._port

    async def start(self) -> None:
        """Bind and start receiving."""
        eng, self._port, listening = listening_engine(self.host, self._port)
        # A community system accepts v1 and v2c alike; pysnmp turns a v1 Trap-PDU into a v2 notification
        # (RFC 3584 §3.1), so v1 traps arrive here with an snmpTrapOID like any other.
        for i, community in enumerate(self.communities):
            config.add_v1_system(eng, f"trap-area-{i}", community)
        for u in self.v3_users:
            c = u.credentials
            # A trap's authoritative engine is its sender, an inform's the receiver (RFC 3414 §1.5.1): the
            # user's keys are localised to both (None: this engine), so a device can send either.
            for engine_id in (bytes.fromhex(u.engine_id.removeprefix("0x")), None):
                config.add_v3_user(
                    eng,
                    c.user,
                    AUTH_PROTOCOLS[c.auth_protocol],
                    c.auth_key,
                    PRIV_PROTOCOLS[c.priv_protocol],
                    c.priv_key,
                    securityEngineId=engine_id,
                )
        # pysnmp drops a message its security model refuses without a word; this observer point is where
        # it can be seen (the wrong community, v3 user, key or engine id of a misconfigured card).
        eng.observer.register_observer(
            self._on_refused,
            "rfc2576.prepareDataElements:sm-failure",
            "rfc3412.prepareDataElements:sm-failure",
        )
        ntfrcv.NotificationReceiver(eng, self._on_trap)
        # Every datagram goes through _on_datagram, which catches what pysnmp lets escape on garbage.
        eng.transport_dispatcher.unregister_recv_callback()
        eng.transport_dispatcher.register_recv_callback(self._on_datagram)
        mib = eng.get_mib_builder()
        self._garbage_counters = [
            *mib.import_symbols("__SNMPv2-MIB", "snmpInASNParseErrs", "snmpInBadVersions"),
            *mib.import_symbols("__SNMP-MPD-MIB", "snmpInvalidMsgs", "snmpUnknownSecurityModels"),
        ]
        self._engine = eng
        await listening

    def _on_datagram(self, dispatcher: Any, domain: Any, address: Any, message: bytes) -> None:
        eng = self._engine
        if eng is None:
            return
        noted, garbage = self.rejects.noted, self._garbage()
        try:
            eng.message_dispatcher.receive_message(eng, domain, address, message)
        except Exception:
            # pysnmp and pyasn1 raise on some garbage (plain ASCII: a TypeError in the BER decoder); left to
            # asyncio, each would log a 28-line traceback, and a hostile sender could flood the log.
            garbage = -1
        # What pysnmp drops quietly it counts in its MIB (snmpInASNParseErrs, RFC 3418; snmpInvalidMsgs,
        # RFC 3412): either way the datagram was no SNMP message, unless a refusal was noted for it already.
        if self.rejects.noted == noted and self._garbage() != garbage:
            self.rejects.note(str(address[0]) if address else "?", "malformed")

    def _garbage(self) -> int:
        return sum(int(c.syntax) for c in self._garbage_counters)

    def _on_trap(
        self, snmp_engine: Any, state_ref: Any, ctx_engine_id: Any, ctx_name: Any, var_binds: Any, cb_ctx: Any
    ) -> None:
        exec_ctx = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        addr = exec_ctx.get("transportAddress")
        source = f"{addr[0]}:{addr[1]}" if addr else "?"
        if exec_ctx.get("securityModel") == USM and exec_ctx.get("securityLevel") != AUTH_PRIV:
            # USM accepts any level the user supports (RFC 3414 §3.2 step 5); every trap user here has
            # auth and priv keys, and user name and engine id travel in clear, so anything less is forged
            # as easily as it is sent.
            user = str(exec_ctx.get("securityName", ""))[:64]
            self.rejects.note(str(addr[0]) if addr else "?", "security_level", f"user {user!r}")
            return
        vbs = {str(o): _plain(v) for o, v in var_binds}
        trap_oid = str(vbs.pop(SNMP_TRAP_OID, ""))
        vbs.pop(SYS_UPTIME, None)
        vbs.pop(SNMP_TRAP_COMMUNITY, None)
        # A failure of ours is logged here: escaping into pysnmp it would be counted as a malformed datagram.
        try:
            ev = self.decoder.decode(trap_oid, vbs, source)
        except Exception:
            _LOG.exception("trap %s from %s could not be decoded", trap_oid, source)
            return
        self.received += 1
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:  # a trap storm must not grow memory without bound; counted
            self.dropped += 1
        if self.callback is not None:
            try:
                self.callback(ev)
            except Exception:
                _LOG.exception("trap callback failed on %s from %s", ev.name, source)

    def _on_refused(self, snmp_engine: Any, execpoint: str, variables: dict[str, Any], cb_ctx: Any) -> None:
        found = refusal(
            variables.get("statusInformation") or {},
            variables.get("securityParameters"),
            {u.credentials.user for u in self.v3_users},
        )
        if found is not None:
            addr = variables.get("transportAddress")
            self.rejects.note(str(addr[0]) if addr else "?", *found)

    async def stop(self) -> None:
        """Close the port."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        await asyncio.sleep(0)
