"""Thin async SNMP v2c/v3 client on the pysnmp 7 asyncio hlapi: GET, GETBULK walks, typed errors."""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.entity import config
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
from pysnmp.proto import api, errind, rfc1902, rfc1905
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

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


@dataclass(frozen=True, slots=True, repr=False)
class SnmpV2c:
    """SNMPv2c community credentials."""

    community: str = "public"

    def __repr__(self) -> str:
        # The community is the password of v2c: error texts embed this repr and travel to logs, status
        # files, MQTT and InfluxDB.
        return "v2c"


@dataclass(frozen=True, slots=True, repr=False)
class SnmpV3:
    """SNMPv3 USM user, authPriv (the only level a machine room should accept)."""

    user: str
    auth_protocol: AuthProtocol = "sha256"
    auth_key: str = ""
    priv_protocol: PrivProtocol = "aes128"
    priv_key: str = ""
    context: str = ""

    def __post_init__(self) -> None:
        if self.auth_protocol not in AUTH_PROTOCOLS:
            raise ValueError(f"auth_protocol {self.auth_protocol!r}; valid: {', '.join(AUTH_PROTOCOLS)}")
        if self.priv_protocol not in PRIV_PROTOCOLS:
            raise ValueError(f"priv_protocol {self.priv_protocol!r}; valid: {', '.join(PRIV_PROTOCOLS)}")
        if len(self.auth_key) < 8 or len(self.priv_key) < 8:
            raise ValueError("SNMPv3 auth_key and priv_key need at least 8 characters (RFC 3414)")

    def __repr__(self) -> str:
        ctx = f" context={self.context}" if self.context else ""
        return f"v3 user={self.user} {self.auth_protocol}/{self.priv_protocol}{ctx}"


Credentials = SnmpV2c | SnmpV3

# RFC 3414 keys a USM user by (authoritative snmpEngineID, userName) and localizes its keys to that
# engine id (§2.6): one SnmpEngine can hold one key set per (agent, user). Every v3 target registers its
# keys for the engine id its agent reported in discovery (§4), never for the user name alone. pysnmp's
# hlapi default (UsmUserData without securityEngineId) puts the keys in the row (local engine id, user)
# that LCD.configure deletes and re-adds whenever another device with the same user name has other keys
# (hlapi/v3arch/asyncio/lcd.py `_usm_auth_changed`), and from which the USM clones the per-agent row on
# first contact (proto/secmod/rfc3414/service.py `__clone_user_info`): requests then went out with a
# neighbour's keys and responses were checked with them. Our engines never hold that local row.
_UNBOUND_ENGINE_ID = bytes.fromhex("8000000004") + b"roomguard-unbound"  # enterprise 0 (reserved), text
# Random master keys for the placeholder row of `_placeholder`: valid for nothing, known to nobody.
_PLACEHOLDER_KEYS = (secrets.token_bytes(20), secrets.token_bytes(20))
# While discovered agents register their USM rows, other polls wait: at most this long per batch.
_REGISTER_BUDGET_S = 0.05


@functools.lru_cache(maxsize=4096)
def _master_keys(auth_protocol: str, auth_key: str, priv_protocol: str, priv_key: str) -> tuple[bytes, bytes]:
    """RFC 3414 §2.6 password-to-key master keys, computed once per distinct pass phrase."""
    # Hashing a pass phrase is 1 MB of digest input (tens of ms in pysnmp); localizing a master key to an
    # agent's engine id is one short hash. A fleet usually shares one key set.
    auth = AUTH_PROTOCOLS[auth_protocol]
    master_auth = config.AUTH_SERVICES[auth].hash_passphrase(auth_key)
    master_priv = config.PRIV_SERVICES[PRIV_PROTOCOLS[priv_protocol]].hash_passphrase(auth, priv_key)
    return bytes(master_auth), bytes(master_priv)


def _placeholder(user: str) -> UsmUserData:
    """A USM entry under a reserved engine id no agent has: lets LCD register a v3 address up front."""
    # LCD.configure needs an auth entry to add a target address; the address's parameters are keyed by
    # (securityName, level, model), so the agent's real entry registered later reuses that address.
    return UsmUserData(user, authKey=_PLACEHOLDER_KEYS[0], privKey=_PLACEHOLDER_KEYS[1],
                       authProtocol=usm.USM_AUTH_HMAC96_SHA, privProtocol=usm.USM_PRIV_CFB128_AES,
                       securityEngineId=_UNBOUND_ENGINE_ID, authKeyType=config.USM_KEY_TYPE_MASTER,
                       privKeyType=config.USM_KEY_TYPE_MASTER)


class _Engines:
    """The SNMP engines of one event loop: the shared one, plus one per conflicting v3 key set."""

    def __init__(self) -> None:
        self.engines: list[SnmpEngine] = [SnmpEngine()]
        # Per engine: (agent engine id, user) → the credentials whose keys that USM row holds.
        self._rows: list[dict[tuple[bytes, str], SnmpV3]] = [{}]
        # Targets whose agent answered discovery but whose USM row is not registered yet.
        self.pending: dict[SnmpTarget, bytes] = {}

    def claim(self, engine_id: bytes, creds: SnmpV3) -> SnmpEngine:
        """The engine whose (engine id, user) row holds exactly these keys, claiming a free row if needed."""
        # A second key set for the same agent and user (a misconfigured device beside the right one, or
        # two agents sharing an engine id) cannot live in the same engine: responses are checked with
        # the row the wire's (engine id, user name) selects (RFC 3414 §3.2 step 4; pysnmp
        # service.py `process_incoming_message`). It gets an engine of its own (about 170 ms and 1 MB to
        # create); a fleet without such conflicts keeps the one shared engine.
        key, keys = (engine_id, creds.user), replace(creds, context="")
        for engine, rows in zip(self.engines, self._rows, strict=True):
            held = rows.setdefault(key, keys)
            if held == keys:
                return engine
        self.engines.append(SnmpEngine())
        self._rows.append({key: keys})
        return self.engines[-1]

    def register_pending(self, first: SnmpTarget) -> None:
        """Register `first` and as many other discovered targets as fit the time budget, in one go."""
        # pysnmp rebuilds its securityName map on the next v3 message after any USM row is added
        # (rfc3414/service.py `__sec2usr`, O(rows)): registering in batches keeps that to one rebuild per
        # batch, and the budget keeps a large batch from stalling the event loop.
        deadline = time.perf_counter() + _REGISTER_BUDGET_S
        engine_id = self.pending.pop(first, None)
        if engine_id is not None:
            first._register(engine_id)
        while self.pending and time.perf_counter() < deadline:
            target, engine_id = self.pending.popitem()
            target._register(engine_id)


_ENGINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Engines] = weakref.WeakKeyDictionary()


def _engines() -> _Engines:
    loop = asyncio.get_running_loop()
    engines = _ENGINES.get(loop)
    if engines is None:
        engines = _ENGINES[loop] = _Engines()
    return engines


def shared_engine() -> SnmpEngine:
    """The process's SnmpEngine for the running event loop (pysnmp binds its dispatcher to one loop)."""
    return _engines().engines[0]


def auth_data(credentials: Credentials, engine_id: bytes | None = None) -> CommunityData | UsmUserData:
    """pysnmp authentication object for our credentials; v3 keys are bound to the agent's engine id."""
    if isinstance(credentials, SnmpV2c):
        return CommunityData(credentials.community, mpModel=1)  # noqa: S508 - most room devices only speak v2c
    if engine_id is None:
        raise ValueError("SNMPv3 keys belong to one agent: give its snmpEngineID (discover_engine_id)")
    master_auth, master_priv = _master_keys(credentials.auth_protocol, credentials.auth_key,
                                            credentials.priv_protocol, credentials.priv_key)
    return UsmUserData(
        credentials.user,
        authKey=master_auth,
        privKey=master_priv,
        authProtocol=AUTH_PROTOCOLS[credentials.auth_protocol],
        privProtocol=PRIV_PROTOCOLS[credentials.priv_protocol],
        securityEngineId=engine_id,
        authKeyType=config.USM_KEY_TYPE_MASTER,
        privKeyType=config.USM_KEY_TYPE_MASTER,
    )


# ------------------------------------------------------------------------------- RFC 3414 §4 discovery

_V2 = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]


def _discovery_request(msg_id: int) -> bytes:
    """An unauthenticated, reportable GET with empty engine id and user name (RFC 3414 §4)."""
    msg = SNMPv3Message()
    msg["msgVersion"] = 3
    header = msg["msgGlobalData"]
    header["msgID"] = msg_id
    header["msgMaxSize"] = 65507
    header["msgFlags"] = b"\x04"  # noAuthNoPriv, reportable
    header["msgSecurityModel"] = 3  # USM
    params = UsmSecurityParameters()
    for name in ("msgAuthoritativeEngineId", "msgUserName", "msgAuthenticationParameters",
                 "msgPrivacyParameters"):
        params[name] = b""
    params["msgAuthoritativeEngineBoots"] = 0
    params["msgAuthoritativeEngineTime"] = 0
    msg["msgSecurityParameters"] = encoder.encode(params)
    scoped = msg["msgData"]["plaintext"]
    scoped["contextEngineId"] = b""
    scoped["contextName"] = b""
    pdu = _V2.GetRequestPDU()
    _V2.apiPDU.set_defaults(pdu)
    _V2.apiPDU.set_request_id(pdu, msg_id)
    scoped["data"]["get-request"] = pdu
    return bytes(encoder.encode(msg))


def _reported_engine_id(data: bytes, msg_id: int) -> bytes | None:
    """msgAuthoritativeEngineID of the agent's answer to our discovery `msg_id`, if that is what `data` is."""
    try:
        msg, _ = decoder.decode(data, asn1Spec=SNMPv3Message())
        if int(msg["msgVersion"]) != 3 or int(msg["msgGlobalData"]["msgID"]) != msg_id:
            return None
        params, _ = decoder.decode(msg["msgSecurityParameters"].asOctets(), asn1Spec=UsmSecurityParameters())
        engine_id: bytes = params["msgAuthoritativeEngineId"].asOctets()
    except (PyAsn1Error, ValueError, KeyError):
        return None
    return engine_id if 5 <= len(engine_id) <= 32 else None  # RFC 3411 SnmpEngineID SIZE(5..32)


class _Discovery(asyncio.DatagramProtocol):
    def __init__(self, msg_id: int, found: asyncio.Future[bytes]) -> None:
        self._msg_id = msg_id
        self._found = found

    def datagram_received(self, data: bytes, addr: Any) -> None:
        engine_id = _reported_engine_id(data, self._msg_id)
        if engine_id is not None and not self._found.done():
            self._found.set_result(engine_id)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: the agent may be starting; like pysnmp, let the timeout decide.
        pass


async def discover_engine_id(address: tuple[str, int], timeout_s: float, retries: int) -> bytes | None:
    """The agent's authoritative snmpEngineID (RFC 3414 §4 discovery), or None when it does not answer."""
    # Our own socket: discovery leaves no state in any SnmpEngine (no probe user, no cloned rows).
    loop = asyncio.get_running_loop()
    msg_id = secrets.randbelow(2**31 - 2) + 1
    found: asyncio.Future[bytes] = loop.create_future()
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: _Discovery(msg_id, found),
                                                           remote_addr=address)
    except OSError:  # no route to the agent: as unanswered as a timeout
        return None
    try:
        request = _discovery_request(msg_id)
        for _ in range(retries + 1):
            transport.sendto(request)
            try:
                return await asyncio.wait_for(asyncio.shield(found), timeout_s)
            except TimeoutError:
                continue
        return None
    finally:
        transport.close()


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
                (self.host, self.port), timeout=self.timeout_s, retries=self.retries)
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
            _engines().pending[self] = engine_id
        return engine_id

    async def _bind(self, target: UdpTransportTarget) -> None:
        """Learn the agent's engine id and register our keys for it (and it only)."""
        # Shielded: a poll cancelled at its deadline must not cancel the discovery other polls await.
        engine_id = await asyncio.shield(self._start_discovery(target))
        if engine_id is None:
            raise DeviceTimeout(f"{self}: no answer to SNMPv3 discovery within {self.timeout_s}s x "
                                f"{self.retries + 1}")
        if self._auth is None:
            _engines().pending.setdefault(self, engine_id)
            _engines().register_pending(self)

    def _register(self, engine_id: bytes) -> None:
        """Put our keys in the USM row (engine id, user) of an engine where that row holds no other keys."""
        assert isinstance(self.credentials, SnmpV3)
        if self._udp is None or (self._auth is not None and self._engine_id == engine_id):
            return  # closed since its discovery (binds at its next request), or bound already
        engine = _engines().claim(engine_id, self.credentials)
        auth = auth_data(self.credentials, engine_id)
        LCD.configure(engine, auth, self._udp, self._context.contextName)
        self._engine, self._auth, self._engine_id = engine, auth, engine_id

    def _unbind(self) -> None:
        self._auth = self._engine = self._engine_id = self._discovery = None
        if self._udp_loop is not None and not self._udp_loop.is_closed():
            engines = _ENGINES.get(self._udp_loop)
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

    async def walk_many(self, roots: Sequence[str], max_repetitions: int = 25, limit: int | None = None,
                        start: Mapping[str, str] | None = None) -> dict[str, SnmpValue]:
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

    async def bulk(self, non_repeaters: Sequence[str], repeaters: Sequence[str],
                   max_repetitions: int) -> BulkResponse:
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

    def _bulk_cmd(self, non_repeaters: int, max_repetitions: int, objects: Sequence[ObjectType],
                  engine: SnmpEngine, auth: Any, target: UdpTransportTarget) -> Any:
        return bulk_cmd(engine, auth, target, self._context, non_repeaters, max_repetitions, *objects,
                        lookupMib=False)

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
                return AuthFailure(f"{self}: agent answers discovery but not our authPriv requests: "
                                   "wrong privacy key or protocol?")
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
        LCD.configure(shared_engine(), _placeholder(self.credentials.user), target, self._context.contextName)
        c = self.credentials
        _master_keys(c.auth_protocol, c.auth_key, c.priv_protocol, c.priv_key)  # the slow part, before polls
        if self._auth is None:
            self._start_discovery(target)

    async def close(self) -> None:
        """Forget the cached transport target (the shared engine stays up for other targets)."""
        self._udp = None
