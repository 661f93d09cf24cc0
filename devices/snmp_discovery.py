"""RFC 3414 §4 engine-id discovery: ask an SNMPv3 agent for its authoritative snmpEngineID.

SNMPv3 keys are localized to one agent's engine id (RFC 3414 §2.6), so a v3 target learns that id
before it registers its keys (see `devices.snmp_credentials`). The discovery request is an
unauthenticated, reportable GET with empty engine id and user name; the agent answers with a Report
carrying its engine id. It goes out on a socket of its own, outside every pysnmp SnmpEngine, so it
leaves no probe user and no cloned USM rows behind. A timeout is an answer too: "not reachable".
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

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
    for name in (
        "msgAuthoritativeEngineId",
        "msgUserName",
        "msgAuthenticationParameters",
        "msgPrivacyParameters",
    ):
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
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Discovery(msg_id, found), remote_addr=address
        )
    except OSError:  # no route to the agent: as unanswered as a timeout
        return None
    try:
        request = _discovery_request(msg_id)
        for _ in range(retries + 1):
            transport.sendto(request)
            try:
                async with asyncio.timeout(timeout_s):
                    return await asyncio.shield(found)
            except TimeoutError:
                continue
        return None
    finally:
        transport.close()
