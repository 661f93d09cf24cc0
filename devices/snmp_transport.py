"""Thin async SNMP v2c/v3 client on the pysnmp 7 asyncio hlapi: GET, GETBULK walks, typed errors."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
from pysnmp.hlapi.v3arch.asyncio import auth as usm
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902, rfc1905

from devices.errors import AuthFailure, DeviceProtocolError, DeviceTimeout, TransportError
from devices.snmp_codec import NO_SUCH, Oid, SnmpValue

AuthProtocol = Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"]
PrivProtocol = Literal["des", "aes128", "aes192", "aes256", "aes192c", "aes256c"]

AUTH_PROTOCOLS: dict[str, Any] = {
    "md5": usm.USM_AUTH_HMAC96_MD5,
    "sha": usm.USM_AUTH_HMAC96_SHA,
    "sha224": usm.USM_AUTH_HMAC128_SHA224,
    "sha256": usm.USM_AUTH_HMAC192_SHA256,
    "sha384": usm.USM_AUTH_HMAC256_SHA384,
    "sha512": usm.USM_AUTH_HMAC384_SHA512,
}
# net-snmp's AES-192/256 extend the key the Blumenthal way; Cisco-style ("C") the Reeder way.
PRIV_PROTOCOLS: dict[str, Any] = {
    "des": usm.USM_PRIV_CBC56_DES,
    "aes128": usm.USM_PRIV_CFB128_AES,
    "aes192": usm.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256": usm.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "aes192c": usm.USM_PRIV_CFB192_AES,
    "aes256c": usm.USM_PRIV_CFB256_AES,
}

# Error indications that mean "your credentials are wrong" (USM reports from RFC 3414 §3.2 and the
# v2c community check). They must never turn into values: Telegraf issue 7746 shipped garbage here.
_AUTH_ERRORS: tuple[type[errind.ErrorIndication], ...] = (
    errind.UnknownUserName, errind.WrongDigest, errind.DecryptionError, errind.AuthenticationError,
    errind.AuthenticationFailure, errind.UnknownSecurityName, errind.UnsupportedSecurityLevel,
    errind.UnknownCommunityName, errind.UnsupportedAuthProtocol, errind.UnsupportedPrivProtocol,
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


@dataclass(frozen=True, slots=True)
class SnmpV2c:
    """SNMPv2c community credentials."""

    community: str = "public"


@dataclass(frozen=True, slots=True)
class SnmpV3:
    """SNMPv3 USM user, authPriv (the only level a machine room should accept)."""

    user: str
    auth_protocol: AuthProtocol = "sha256"
    auth_key: str = field(default="", repr=False)
    priv_protocol: PrivProtocol = "aes128"
    priv_key: str = field(default="", repr=False)
    context: str = ""

    def __post_init__(self) -> None:
        if self.auth_protocol not in AUTH_PROTOCOLS:
            raise ValueError(f"auth_protocol {self.auth_protocol!r}; valid: {', '.join(AUTH_PROTOCOLS)}")
        if self.priv_protocol not in PRIV_PROTOCOLS:
            raise ValueError(f"priv_protocol {self.priv_protocol!r}; valid: {', '.join(PRIV_PROTOCOLS)}")
        if len(self.auth_key) < 8 or len(self.priv_key) < 8:
            raise ValueError("SNMPv3 auth_key and priv_key need at least 8 characters (RFC 3414)")


Credentials = SnmpV2c | SnmpV3

_ENGINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SnmpEngine] = weakref.WeakKeyDictionary()


def shared_engine() -> SnmpEngine:
    """The process's SnmpEngine for the running event loop (pysnmp binds its dispatcher to one loop)."""
    loop = asyncio.get_running_loop()
    engine = _ENGINES.get(loop)
    if engine is None:
        engine = _ENGINES[loop] = SnmpEngine()
    return engine


def auth_data(credentials: Credentials) -> CommunityData | UsmUserData:
    """pysnmp authentication object for our credentials."""
    if isinstance(credentials, SnmpV2c):
        return CommunityData(credentials.community, mpModel=1)  # noqa: S508 - most room devices only speak v2c
    return UsmUserData(
        credentials.user,
        authKey=credentials.auth_key,
        privKey=credentials.priv_key,
        authProtocol=AUTH_PROTOCOLS[credentials.auth_protocol],
        privProtocol=PRIV_PROTOCOLS[credentials.priv_protocol],
    )


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


def _absorb(vbs: Sequence[Any], active: Sequence[str], pos: dict[str, str], out: dict[str, SnmpValue],
            counts: dict[str, int], strict: bool = False) -> tuple[set[str], bool]:
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

    def __init__(self, host: str, port: int = 161, timeout_s: float = 2.0, retries: int = 1,
                 credentials: Credentials | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        self.credentials: Credentials = credentials or SnmpV2c()
        self._auth = auth_data(self.credentials)
        ctx = self.credentials.context if isinstance(self.credentials, SnmpV3) else ""
        self._context = ContextData(contextName=ctx)
        self._udp: UdpTransportTarget | None = None
        self._udp_loop: asyncio.AbstractEventLoop | None = None
        self._objects: dict[str, ObjectType] = {}
        self._rows_hint: dict[tuple[str, ...], int] = {}
        self.requests = 0  # PDUs sent (retries excluded), for tests and benchmarks

    def __repr__(self) -> str:
        return f"SnmpTarget({self.host}:{self.port}, {self.credentials!r})"

    async def _target(self) -> UdpTransportTarget:
        loop = asyncio.get_running_loop()
        if self._udp is None or self._udp_loop is not loop:
            self._udp = await UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout_s, retries=self.retries)
            self._udp_loop = loop
        return self._udp

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
        ei, es, ix, vbs = await get_cmd(shared_engine(), self._auth, await self._target(), self._context,
                                        *(self._object(o) for o in oids), lookupMib=False)
        await self._check(ei, es, ix, vbs)
        return {str(name): from_pysnmp(val) for name, val in vbs}

    async def walk(self, root: str, max_repetitions: int = 25) -> dict[str, SnmpValue]:
        """Every instance under `root` (GETBULK walk)."""
        return await self.walk_many([root], max_repetitions)

    async def walk_many(self, roots: Sequence[str], max_repetitions: int = 25, limit: int | None = None,
                        start: Mapping[str, str] | None = None) -> dict[str, SnmpValue]:
        """Walk several subtrees (table columns) side by side: one GETBULK carries all of them."""
        # `start` (root → last OID already received) continues columns an earlier request left open.
        engine, target = shared_engine(), await self._target()
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
            ei, es, ix, vbs = await bulk_cmd(engine, self._auth, target, self._context, 0, reps,
                                             *(self._object(pos[r]) for r in active), lookupMib=False)
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

    async def bulk(self, non_repeaters: Sequence[str], repeaters: Sequence[str],
                   max_repetitions: int) -> BulkResponse:
        """One GETBULK: GETNEXT of each non-repeater plus `max_repetitions` rows of each repeater column."""
        # BulkUnsupported on tooBig or a response not laid out as RFC 3416 says (the caller then uses
        # separate GET and walk requests); every other error is mapped as for get().
        repeaters = list(dict.fromkeys(repeaters))  # wire slots are filed by position: no duplicates
        n, m = len(non_repeaters), len(repeaters)
        self.requests += 1
        ei, es, ix, vbs = await bulk_cmd(
            shared_engine(), self._auth, await self._target(), self._context, n, max_repetitions,
            *(self._object(o) for o in non_repeaters), *(self._object(r) for r in repeaters),
            lookupMib=False)
        await self._check(ei, None, None, vbs)
        if es and int(es):
            where = vbs[int(ix) - 1][0] if ix and 0 < int(ix) <= len(vbs) else "?"
            raise BulkUnsupported(f"{self}: {es.prettyPrint()} at {where} for GETBULK of "
                                  f"{n}+{m}x{max_repetitions}", definite=int(es) == _TOO_BIG)
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
        # answers an unauthenticated discovery, it is alive: the credentials are the problem.
        if isinstance(self.credentials, SnmpV3):
            probe = UsmUserData("roomguard-discovery")  # noqa: S509 - discovery only, no data
            quick = await UdpTransportTarget.create((self.host, self.port), timeout=min(self.timeout_s, 1),
                                                    retries=0)
            ei, *_ = await get_cmd(shared_engine(), probe, quick, ContextData(),
                                   self._object("1.3.6.1.2.1.1.3.0"), lookupMib=False)
            if ei and not isinstance(ei, errind.RequestTimedOut):
                return AuthFailure(f"{self}: agent answers discovery ({ei}) but not our authPriv "
                                   "requests: wrong privacy key or protocol?")
        return DeviceTimeout(f"{self}: no answer within {self.timeout_s}s x {self.retries + 1}")

    async def prepare(self) -> None:
        """Register this target's credentials and address with the shared engine before polling.

        pysnmp rebuilds its community and target maps (a walk over every configured entry) on each
        message after any registration. Registering a fleet lazily, one first poll at a time, costs
        O(n) per message for the whole start-up; with hundreds of devices that blocks the event loop
        for seconds and first polls time out. Registering all targets first costs one rebuild.
        """
        LCD.configure(shared_engine(), self._auth, await self._target(), self._context.contextName)

    async def close(self) -> None:
        """Forget the cached transport target (the shared engine stays up for other targets)."""
        self._udp = None
