"""Thin async SNMP v2c/v3 client on the pysnmp 7 asyncio hlapi: GET, GETBULK walks, typed errors.

`SnmpTarget` is one agent endpoint: it sends GET and GETBULK requests, files GETBULK responses under
the table columns they walk, and maps pysnmp's error indications to our typed errors (an
authentication failure never becomes a value). Credentials and how they are bound to pysnmp's engines
live in `devices.snmp_credentials`, SNMPv3 engine-id discovery in `devices.snmp_discovery`; the names
callers use from them are re-exported here, so an SNMP client imports from this module only.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyasn1.type import univ
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902, rfc1905

from devices.errors import AuthFailure, DeviceProtocolError, DeviceTimeout, TransportError
from devices.snmp_codec import NO_SUCH, Oid, SnmpValue
from devices.snmp_credentials import (
    AUTH_PROTOCOLS,
    PRIV_PROTOCOLS,
    AuthProtocol,
    Credentials,
    PrivProtocol,
    SnmpV2c,
    SnmpV3,
    auth_data,
    engines_of,
    loop_engines,
    master_keys,
    placeholder_auth,
    shared_engine,
)
from devices.snmp_discovery import discover_engine_id

__all__ = [  # with the names of snmp_credentials and snmp_discovery that callers import from here
    "AUTH_PROTOCOLS",
    "PRIV_PROTOCOLS",
    "AuthProtocol",
    "BulkResponse",
    "BulkUnsupported",
    "Credentials",
    "PrivProtocol",
    "SnmpTarget",
    "SnmpV2c",
    "SnmpV3",
    "auth_data",
    "discover_engine_id",
    "from_pysnmp",
    "shared_engine",
]

# Error indications that mean "your credentials are wrong" (USM reports from RFC 3414 §3.2 and the
# v2c community check). They must never turn into values: Telegraf issue 7746 shipped garbage here.
_AUTH_ERRORS: tuple[type[errind.ErrorIndication], ...] = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.DecryptionError,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.UnknownCommunityName,
    errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol,
)
_NO_SUCH_TYPES = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView, univ.Null)
_TOO_BIG = 1  # RFC 3416 errorStatus tooBig


class BulkUnsupported(DeviceProtocolError):
    """A combined GETBULK failed in a way separate GET and walk requests may not (errorStatus, layout)."""

    def __init__(self, message: str, definite: bool = True) -> None:
        super().__init__(message)
        # True: tooBig or a response laid out against RFC 3416, the agent cannot take the request.
        # False: another errorStatus, which the same objects may also cause in a plain GET.
        self.definite = definite


@dataclass(slots=True)
class BulkResponse:
    """One combined GETBULK: the non-repeaters' successors and the table columns it covered."""

    # Non-repeater i → (OID returned, value); endOfMibView → (the OID sent, NO_SUCH). Shorter than the
    # request when the agent truncated the response.
    next_of: list[tuple[str, SnmpValue]]
    columns: dict[str, SnmpValue]
    counts: dict[str, int]  # column root → instances received
    unfinished: dict[str, str]  # column root → last OID received, for columns this response did not end


def from_pysnmp(value: Any) -> SnmpValue:
    """A pysnmp/pyasn1 value as plain Python (int, str, bytes, Oid or NO_SUCH)."""
    if isinstance(value, _NO_SUCH_TYPES):
        return NO_SUCH
    if isinstance(value, univ.Integer):  # Integer32, Gauge32, Counter32/64, TimeTicks, Unsigned32
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return Oid(str(value))
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in value.asOctets())
    if isinstance(value, univ.OctetString):
        raw: bytes = value.asOctets()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
        return text if text.isprintable() or not text.strip("\x00\r\n\t") else raw
    return str(value)


@functools.lru_cache(maxsize=4096)
def _key(oid: str) -> tuple[int, ...]:
    return tuple(int(x) for x in oid.split("."))


def _absorb(
    vbs: Sequence[Any],
    active: Sequence[str],
    pos: dict[str, str],
    out: dict[str, SnmpValue],
    counts: dict[str, int],
    strict: bool = False,
) -> tuple[set[str], bool]:
    """File a GETBULK response's repeater varbinds under their roots; (roots it ended, any advanced)."""
    # strict: a varbind inside its column that does not advance means the agent did not lay the
    # response out as we asked (BulkUnsupported) rather than a table that ends.
    done: set[str] = set()
    moved = False
    n = len(active)
    last: dict[str, tuple[int, ...]] = {}
    for i, (name, val) in enumerate(vbs):
        root = active[i % n]
        if root in done:
            continue
        oid = str(name)
        if isinstance(val, rfc1905.EndOfMibView) or not oid.startswith(root + "."):
            done.add(root)
            continue
        if strict:
            key = name.asTuple()
            if root in last and key <= last[root]:
                raise BulkUnsupported(f"column {root}: {oid} does not follow {pos[root]}")
            last[root] = key
        out[oid] = from_pysnmp(val)
        counts[root] += 1
        moved = moved or oid != pos[root]
        pos[root] = oid
    return done, moved


class SnmpTarget:
    """One SNMP agent endpoint with its credentials; reuses its pysnmp objects between requests."""

    def __init__(
        self,
        host: str,
        port: int = 161,
        timeout_s: float = 2.0,
        retries: int = 1,
        credentials: Credentials | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        self.credentials: Credentials = credentials or SnmpV2c()
        ctx = self.credentials.context if isinstance(self.credentials, SnmpV3) else ""
        self._context = ContextData(contextName=ctx)
        self._udp: UdpTransportTarget | None = None
        self._udp_loop: asyncio.AbstractEventLoop | None = None
        # v2c: the community entry. v3: the USM entry bound to the agent's engine id (None until the
        # agent answered discovery) and the engine holding that entry's row.
        self._auth: CommunityData | UsmUserData | None = None
        self._engine: SnmpEngine | None = None
        self._engine_id: bytes | None = None
        self._discovery: asyncio.Task[bytes | None] | None = None
        if isinstance(self.credentials, SnmpV2c):
            self._auth = auth_data(self.credentials)
        self._objects: dict[str, ObjectType] = {}
        self._rows_hint: dict[tuple[str, ...], int] = {}
        self.requests = 0  # PDUs sent (retries excluded), for tests and benchmarks

    def __repr__(self) -> str:
        return f"SnmpTarget({self.host}:{self.port}, {self.credentials!r})"

    async def _target(self) -> UdpTransportTarget:
        loop = asyncio.get_running_loop()
        if self._udp is None or self._udp_loop is not loop:
            if isinstance(self.credentials, SnmpV3) and self._udp_loop is not loop:
                self._unbind()  # engines are per event loop: bind again in this one
            self._udp = await UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout_s, retries=self.retries
            )
            self._udp_loop = loop
        return self._udp

    async def _session(self) -> tuple[SnmpEngine, CommunityData | UsmUserData, UdpTransportTarget]:
        """Engine, auth entry and transport target for the next request."""
        target = await self._target()
        if isinstance(self.credentials, SnmpV2c):
            assert self._auth is not None
            return shared_engine(), self._auth, target
        if self._auth is None:
            await self._bind(target)
        assert self._engine is not None
        assert self._auth is not None
        return self._engine, self._auth, target

    def _start_discovery(self, target: UdpTransportTarget) -> asyncio.Task[bytes | None]:
        task = self._discovery
        if task is None or (task.done() and (task.cancelled() or task.exception() or task.result() is None)):
            task = self._discovery = asyncio.ensure_future(self._discover(target))
        return task

    async def _discover(self, target: UdpTransportTarget) -> bytes | None:
        engine_id = await discover_engine_id(target.transport_address, self.timeout_s, self.retries)
        if engine_id is not None and self._auth is None:
            loop_engines().pending[self] = engine_id
        return engine_id

    async def _bind(self, target: UdpTransportTarget) -> None:
        """Learn the agent's engine id and register our keys for it (and it only)."""
        # Shielded: a poll cancelled at its deadline must not cancel the discovery other polls await.
        engine_id = await asyncio.shield(self._start_discovery(target))
        if engine_id is None:
            raise DeviceTimeout(
                f"{self}: no answer to SNMPv3 discovery within {self.timeout_s}s x {self.retries + 1}"
            )
        if self._auth is None:
            loop_engines().pending.setdefault(self, engine_id)
            loop_engines().register_pending(self)

    def _register(self, engine_id: bytes) -> None:
        """Put our keys in the USM row (engine id, user) of an engine where that row holds no other keys."""
        assert isinstance(self.credentials, SnmpV3)
        if self._udp is None or (self._auth is not None and self._engine_id == engine_id):
            return  # closed since its discovery (binds at its next request), or bound already
        engine = loop_engines().claim(engine_id, self.credentials)
        auth = auth_data(self.credentials, engine_id)
        LCD.configure(engine, auth, self._udp, self._context.contextName)
        self._engine, self._auth, self._engine_id = engine, auth, engine_id

    def _unbind(self) -> None:
        self._auth = self._engine = self._engine_id = self._discovery = None
        if self._udp_loop is not None and not self._udp_loop.is_closed():
            engines = engines_of(self._udp_loop)
            if engines is not None:
                engines.pending.pop(self, None)

    async def _request(self, send: Callable[[SnmpEngine, Any, UdpTransportTarget], Any]) -> Any:
        """Run one pysnmp command; rebinds once when the agent's engine id changed under us."""
        result = await send(*await self._session())
        if isinstance(result[0], errind.UnknownSecurityName) and isinstance(self.credentials, SnmpV3):
            # pysnmp rediscovered an engine id we registered no keys for (agent replaced or reset its
            # snmpEngineID): there is no local row to clone from, by design. Bind to the new one.
            self._unbind()
            result = await send(*await self._session())
        return result

    def _object(self, oid: str) -> ObjectType:
        obj = self._objects.get(oid)
        if obj is None:  # resolved once, then reused: pysnmp skips resolution for a clean ObjectType
            obj = self._objects[oid] = ObjectType(ObjectIdentity(oid))
        return obj

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """GET these OIDs in one request; missing objects come back as NO_SUCH."""
        if not oids:
            return {}
        self.requests += 1
        objects = [self._object(o) for o in oids]

        def send(engine: SnmpEngine, auth: Any, target: UdpTransportTarget) -> Any:
            return get_cmd(engine, auth, target, self._context, *objects, lookupMib=False)

        ei, es, ix, vbs = await self._request(send)
        await self._check(ei, es, ix, vbs)
        return {str(name): from_pysnmp(val) for name, val in vbs}

    async def walk(self, root: str, max_repetitions: int = 25) -> dict[str, SnmpValue]:
        """Every instance under `root` (GETBULK walk)."""
        return await self.walk_many([root], max_repetitions)

    async def walk_many(
        self,
        roots: Sequence[str],
        max_repetitions: int = 25,
        limit: int | None = None,
        start: Mapping[str, str] | None = None,
    ) -> dict[str, SnmpValue]:
        """Walk several subtrees (table columns) side by side: one GETBULK carries all of them."""
        # `start` (root → last OID already received) continues columns an earlier request left open.
        out: dict[str, SnmpValue] = {}
        pos = {r: r for r in roots}
        if start:
            pos.update(start)
        active = list(dict.fromkeys(roots))
        # Tables keep their size between polls: asking for last poll's row count + 1 lets one GETBULK
        # end every column without the agent encoding (and us parsing) 25 rows past the table's end.
        hint_key = tuple(active)
        reps = min(max_repetitions, self._rows_hint.get(hint_key, max_repetitions))
        if start:  # the table outgrew the hint: continue at full speed
            reps = max_repetitions
        counts = dict.fromkeys(active, 0)
        while active:
            self.requests += 1
            objects = [self._object(pos[r]) for r in active]
            ei, es, ix, vbs = await self._request(functools.partial(self._bulk_cmd, 0, reps, objects))
            await self._check(ei, es, ix, vbs)
            if not vbs:
                break
            done, moved = _absorb(vbs, active, pos, out, counts)
            if not moved:  # an agent that does not advance would loop forever (oidNotIncreasing)
                break
            active = [r for r in active if r not in done]
            if limit is not None and len(out) >= limit:
                break
            reps = max_repetitions
        if limit is None and not start:  # only complete walks say how big the table is
            self._rows_hint[hint_key] = max(counts.values(), default=0) + 1
        return out

    async def bulk(
        self, non_repeaters: Sequence[str], repeaters: Sequence[str], max_repetitions: int
    ) -> BulkResponse:
        """One GETBULK: GETNEXT of each non-repeater plus `max_repetitions` rows of each repeater column."""
        # BulkUnsupported on tooBig or a response not laid out as RFC 3416 says (the caller then uses
        # separate GET and walk requests); every other error is mapped as for get().
        repeaters = list(dict.fromkeys(repeaters))  # wire slots are filed by position: no duplicates
        n, m = len(non_repeaters), len(repeaters)
        self.requests += 1
        objects = [*(self._object(o) for o in non_repeaters), *(self._object(r) for r in repeaters)]
        ei, es, ix, vbs = await self._request(functools.partial(self._bulk_cmd, n, max_repetitions, objects))
        await self._check(ei, None, None, vbs)
        if es and int(es):
            where = vbs[int(ix) - 1][0] if ix and 0 < int(ix) <= len(vbs) else "?"
            raise BulkUnsupported(
                f"{self}: {es.prettyPrint()} at {where} for GETBULK of {n}+{m}x{max_repetitions}",
                definite=int(es) == _TOO_BIG,
            )
        if len(vbs) > n + m * max_repetitions:  # e.g. an agent that repeats the non-repeaters too
            raise BulkUnsupported(f"{self}: {len(vbs)} varbinds for GETBULK of {n}+{m}x{max_repetitions}")
        next_of: list[tuple[str, SnmpValue]] = []
        for sent, (name, val) in zip(non_repeaters, vbs[:n], strict=False):
            oid = str(name)
            if not isinstance(val, rfc1905.EndOfMibView) and name.asTuple() <= _key(sent):
                raise BulkUnsupported(f"{self}: non-repeater {sent} answered with {oid}")
            next_of.append((oid, from_pysnmp(val)))
        pos = {r: r for r in repeaters}
        columns: dict[str, SnmpValue] = {}
        counts = dict.fromkeys(pos, 0)
        active = list(pos)
        done: set[str] = set()
        if m:
            done, _ = _absorb(vbs[n:], active, pos, columns, counts, strict=True)
        # Columns still open: the table outgrew max_repetitions, or the agent shortened the response.
        unfinished = {r: pos[r] for r in active if r not in done}
        return BulkResponse(next_of, columns, counts, unfinished)

    def _bulk_cmd(
        self,
        non_repeaters: int,
        max_repetitions: int,
        objects: Sequence[ObjectType],
        engine: SnmpEngine,
        auth: Any,
        target: UdpTransportTarget,
    ) -> Any:
        return bulk_cmd(
            engine, auth, target, self._context, non_repeaters, max_repetitions, *objects, lookupMib=False
        )

    async def _check(self, ei: Any, es: Any, ix: Any, vbs: Any) -> None:
        if ei:
            if isinstance(ei, errind.RequestTimedOut):
                raise await self._timeout_cause()
            if isinstance(ei, _AUTH_ERRORS):
                raise AuthFailure(f"{self}: {ei}")
            raise DeviceProtocolError(f"{self}: {ei}")
        if es and int(es):
            where = vbs[int(ix) - 1][0] if ix and 0 < int(ix) <= len(vbs) else "?"
            raise DeviceProtocolError(f"{self}: {es.prettyPrint()} at {where}")

    async def _timeout_cause(self) -> TransportError:
        # A wrong SNMPv3 privacy key is silent: the agent decrypts garbage and drops it as a parse
        # error (net-snmp snmpInASNParseErrs) — the client only sees a timeout. If the agent still
        # answers an unauthenticated discovery (RFC 3414 §4), it is alive: the credentials are the problem.
        if isinstance(self.credentials, SnmpV3) and self._udp is not None:
            engine_id = await discover_engine_id(self._udp.transport_address, min(self.timeout_s, 1), 0)
            if engine_id is not None:
                if engine_id != self._engine_id:  # another agent answers at this address now
                    self._unbind()
                return AuthFailure(
                    f"{self}: agent answers discovery but not our authPriv requests: "
                    "wrong privacy key or protocol?"
                )
        return DeviceTimeout(f"{self}: no answer within {self.timeout_s}s x {self.retries + 1}")

    async def prepare(self) -> None:
        """Register this target's credentials and address with the shared engine before polling.

        pysnmp rebuilds its community and target maps (a walk over every configured entry) on each
        message after any registration. Registering a fleet lazily, one first poll at a time, costs
        O(n) per message for the whole start-up; with hundreds of devices that blocks the event loop
        for seconds and first polls time out. Registering all targets first costs one rebuild. SNMPv3
        targets register their address here too; their keys follow once the agent named its engine id.
        """
        target = await self._target()
        if isinstance(self.credentials, SnmpV2c):
            assert self._auth is not None
            LCD.configure(shared_engine(), self._auth, target, self._context.contextName)
            return
        # v3 keys need the agent's engine id: the address is registered now (under a placeholder USM
        # entry), the agent is asked for its engine id in the background, and the USM rows of every
        # agent that answered are registered together before the first request that needs one.
        placeholder = placeholder_auth(self.credentials.user)
        LCD.configure(shared_engine(), placeholder, target, self._context.contextName)
        c = self.credentials
        master_keys(c.auth_protocol, c.auth_key, c.priv_protocol, c.priv_key)  # the slow part, before polls
        if self._auth is None:
            self._start_discovery(target)

    async def close(self) -> None:
        """Forget the cached transport target (the shared engine stays up for other targets)."""
        self._udp = None
