"""Why the trap receiver refused a datagram, and counts per source and kind, logged at most once a minute."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pyasn1.codec.ber import decoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import errind
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

_LOG = logging.getLogger("devices.traps")

# What each kind of refusal tells the person looking for the misconfigured card.
REJECT_HINTS: dict[str, str] = {
    "unknown_community": "community not in snmp_traps.communities",
    "unknown_user": "SNMPv3 user not in snmp_traps.v3_users",
    "unknown_engine_id": "SNMPv3 user known, but configured with another engine id",
    "wrong_auth_key": "SNMPv3 authentication failed: auth key or protocol differs",
    "wrong_priv_key": "SNMPv3 decryption failed: priv key or protocol differs",
    "security_level": "SNMPv3 trap below authPriv, which every configured trap user requires",
    "not_in_time_window": "SNMPv3 message outside the time window (RFC 3414 §3.2 step 7)",
    "malformed": "not an SNMP message",
}
# pysnmp's error indication → kind. A trap's sender is the authoritative engine (RFC 3414 §1.5.1), so
# a user looked up under a wrong engine id is "unknown" too: refusal() tells the two apart.
_KINDS: tuple[tuple[type[errind.ErrorIndication], str], ...] = (
    (errind.UnknownCommunityName, "unknown_community"),
    (errind.UnknownSecurityName, "unknown_user"),
    (errind.UnknownUserName, "unknown_user"),
    (errind.UnknownEngineID, "unknown_engine_id"),
    (errind.AuthenticationFailure, "wrong_auth_key"),
    (errind.WrongDigest, "wrong_auth_key"),
    (errind.AuthenticationError, "wrong_auth_key"),
    (errind.DecryptionError, "wrong_priv_key"),
    (errind.UnsupportedSecurityLevel, "security_level"),
    (errind.NotInTimeWindow, "not_in_time_window"),
    (errind.DeserializationError, "malformed"),
    (errind.InvalidMsg, "malformed"),
)
OVERFLOW_SOURCE = "other"
MAX_SOURCES = 256
LOG_EVERY_S = 60.0


class TrapRejects:
    """Refused datagrams by (source address, kind); one log line per source and minute at most."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        log_every_s: float = LOG_EVERY_S,
        max_sources: int = MAX_SOURCES,
    ) -> None:
        """`clock`: monotonic seconds (tests pass their own); `max_sources`: addresses counted apart."""
        self.counts: Counter[tuple[str, str]] = Counter()
        self.noted = 0  # all refusals so far (cheap to compare around one datagram)
        self._clock = clock
        self._log_every_s = log_every_s
        self._max_sources = max_sources
        self._last_log: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def note(self, source: str, kind: str, detail: str = "") -> None:
        """Count one refused datagram from `source` (an address); log it unless `source` was this minute."""
        if source not in self._last_log and len(self._last_log) >= self._max_sources:
            # Spoofed source addresses must grow neither memory nor the log without bound.
            source = OVERFLOW_SOURCE
        self.counts[(source, kind)] += 1
        self.noted += 1
        self._unlogged[source] += 1
        now = self._clock()
        last = self._last_log.get(source)
        if last is not None and now - last < self._log_every_s:
            return
        self._last_log[source] = now
        more = self._unlogged.pop(source) - 1
        _LOG.warning(
            "SNMP trap from %s refused: %s%s%s",
            source,
            REJECT_HINTS.get(kind, kind),
            f" ({detail})" if detail else "",
            f"; {more} more refused from this address since its last line" if more else "",
        )

    def total(self, kind: str | None = None) -> int:
        """How many datagrams were refused (of `kind` when given)."""
        return sum(n for (_, k), n in self.counts.items() if kind is None or k == kind)

    def report(self) -> list[dict[str, str | int]]:
        """One entry per source and kind with its count and what to check (for `roomguard status`)."""
        return [
            {"source": source, "kind": kind, "count": n, "hint": REJECT_HINTS.get(kind, kind)}
            for (source, kind), n in sorted(self.counts.items())
        ]

    def by_source(self) -> dict[str, dict[str, int]]:
        """Source address → kind → count (JSON-ready)."""
        out: dict[str, dict[str, int]] = {}
        for (source, kind), n in sorted(self.counts.items()):
            out.setdefault(source, {})[kind] = n
        return out


def refusal(
    status: Mapping[str, Any], security_parameters: Any, users: Collection[str]
) -> tuple[str, str] | None:
    """(kind, detail) of a message pysnmp's security model refused; None for protocol, not an error."""
    indication = status.get("errorIndication")
    kind = next((k for cls, k in _KINDS if isinstance(indication, cls)), None)
    if kind is None:
        return None if indication is None else (_snake(type(indication).__name__), "")
    if kind not in ("unknown_user", "unknown_engine_id", "wrong_auth_key", "wrong_priv_key"):
        return kind, ""
    usm = _usm(security_parameters)
    if usm is None:
        return kind, ""
    user, engine_id = usm
    if kind == "unknown_engine_id" and not engine_id:
        return None  # engine id discovery before a v3 inform (RFC 3414 §4): a report, not a refusal
    if kind == "unknown_user" and user in users:
        kind = "unknown_engine_id"
    # User names and engine ids travel in clear (RFC 3414 §2.4), so naming them leaks nothing.
    return kind, f"user {user!r}, engine id 0x{engine_id.hex() or '-'}"


def _usm(security_parameters: Any) -> tuple[str, bytes] | None:
    """(msgUserName, msgAuthoritativeEngineID) of a v3 message's security parameters, if they parse."""
    if security_parameters is None:
        return None
    try:
        raw = bytes(security_parameters.asOctets())
        params, _ = decoder.decode(raw, asn1Spec=UsmSecurityParameters())
        user = bytes(params["msgUserName"].asOctets()).decode("utf-8", "replace")[:64]
        return user, bytes(params["msgAuthoritativeEngineId"].asOctets())
    except (PyAsn1Error, AttributeError, TypeError, ValueError):
        return None


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
