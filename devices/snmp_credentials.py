"""SNMP credentials and how they are bound to agents in pysnmp's engines (RFC 3414 USM).

`SnmpV2c`/`SnmpV3` hold a target's credentials (their reprs never show a secret); `auth_data` turns
them into pysnmp auth entries, SNMPv3 keys always bound to the one agent engine id they belong to.
This module also owns the engines themselves: the shared SnmpEngine of each event loop, the extra
engines that conflicting v3 key sets need, the batched registration of USM rows, the cache of
pass-phrase hashes, and the placeholder entry that registers a v3 address before its agent answered.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
import weakref
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from pysnmp.entity import config
from pysnmp.hlapi.v3arch.asyncio import CommunityData, SnmpEngine, UsmUserData
from pysnmp.hlapi.v3arch.asyncio import auth as usm

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
# Random master keys for the placeholder row of `placeholder_auth`: valid for nothing, known to nobody.
_PLACEHOLDER_KEYS = (secrets.token_bytes(20), secrets.token_bytes(20))
# While discovered agents register their USM rows, other polls wait: at most this long per batch.
_REGISTER_BUDGET_S = 0.05


@functools.lru_cache(maxsize=4096)
def master_keys(auth_protocol: str, auth_key: str, priv_protocol: str, priv_key: str) -> tuple[bytes, bytes]:
    """RFC 3414 §2.6 password-to-key master keys, computed once per distinct pass phrase."""
    # Hashing a pass phrase is 1 MB of digest input (tens of ms in pysnmp); localizing a master key to an
    # agent's engine id is one short hash. A fleet usually shares one key set.
    auth = AUTH_PROTOCOLS[auth_protocol]
    master_auth = config.AUTH_SERVICES[auth].hash_passphrase(auth_key)
    master_priv = config.PRIV_SERVICES[PRIV_PROTOCOLS[priv_protocol]].hash_passphrase(auth, priv_key)
    return bytes(master_auth), bytes(master_priv)


def placeholder_auth(user: str) -> UsmUserData:
    """A USM entry under a reserved engine id no agent has: lets LCD register a v3 address up front."""
    # LCD.configure needs an auth entry to add a target address; the address's parameters are keyed by
    # (securityName, level, model), so the agent's real entry registered later reuses that address.
    return UsmUserData(
        user,
        authKey=_PLACEHOLDER_KEYS[0],
        privKey=_PLACEHOLDER_KEYS[1],
        authProtocol=usm.USM_AUTH_HMAC96_SHA,
        privProtocol=usm.USM_PRIV_CFB128_AES,
        securityEngineId=_UNBOUND_ENGINE_ID,
        authKeyType=config.USM_KEY_TYPE_MASTER,
        privKeyType=config.USM_KEY_TYPE_MASTER,
    )


class Registrant(Protocol):
    """A v3 target (`SnmpTarget`) whose agent answered discovery: it registers its own USM row."""

    def _register(self, engine_id: bytes) -> None: ...


class Engines:
    """The SNMP engines of one event loop: the shared one, plus one per conflicting v3 key set."""

    def __init__(self) -> None:
        self.engines: list[SnmpEngine] = [SnmpEngine()]
        # Per engine: (agent engine id, user) → the credentials whose keys that USM row holds.
        self._rows: list[dict[tuple[bytes, str], SnmpV3]] = [{}]
        # Targets whose agent answered discovery but whose USM row is not registered yet.
        self.pending: dict[Registrant, bytes] = {}

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

    def register_pending(self, first: Registrant) -> None:
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


_ENGINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Engines] = weakref.WeakKeyDictionary()


def loop_engines() -> Engines:
    """The engines of the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    engines = _ENGINES.get(loop)
    if engines is None:
        engines = _ENGINES[loop] = Engines()
    return engines


def engines_of(loop: asyncio.AbstractEventLoop) -> Engines | None:
    """The engines of `loop` if it created any (unlike `loop_engines`, callable outside that loop)."""
    return _ENGINES.get(loop)


def shared_engine() -> SnmpEngine:
    """The process's SnmpEngine for the running event loop (pysnmp binds its dispatcher to one loop)."""
    return loop_engines().engines[0]


def auth_data(credentials: Credentials, engine_id: bytes | None = None) -> CommunityData | UsmUserData:
    """pysnmp authentication object for our credentials; v3 keys are bound to the agent's engine id."""
    if isinstance(credentials, SnmpV2c):
        return CommunityData(credentials.community, mpModel=1)  # noqa: S508 - most room devices only speak v2c
    if engine_id is None:
        raise ValueError("SNMPv3 keys belong to one agent: give its snmpEngineID (discover_engine_id)")
    master_auth, master_priv = master_keys(
        credentials.auth_protocol, credentials.auth_key, credentials.priv_protocol, credentials.priv_key
    )
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
