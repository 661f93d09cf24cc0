"""SNMPv3 keys stay with their agent in the shared engine; no secret in any repr, str or error text.

Real net-snmp snmpd agents, all with the SAME user name and DIFFERENT keys (the normal machine-room
case: one `roomguard` user on every card), polled concurrently through the collector's Poller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from collector.poller import Poller, PollTarget
from devices.errors import AuthFailure, DeviceProtocolError, DeviceTimeout, TransportError
from devices.reading import DeviceRef, PollResult, Quality
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV2c, SnmpV3
from tests.snmp_fixtures import Snmpd, free_udp_port, profile_overrides, snmp_profile, v3_args

pytestmark = pytest.mark.integration

USER = "roomguard"
ROUNDS = 15
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
CHARGE = "battery_charge_pct"
# Unique markers: none of them may ever show up in a repr, str or error text.
COMMUNITY_OK = "MARKER-community-ok-7f3a"
COMMUNITY_WRONG = "MARKER-community-wrong-91c2"
V2 = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]


@dataclass(frozen=True)
class Agent:
    """One running snmpd: where it listens, the keys its `roomguard` user has, what it serves."""

    port: int
    auth_key: str
    priv_key: str
    charge: int

    def creds(self, auth_key: str | None = None, priv_key: str | None = None, context: str = "") -> SnmpV3:
        """This agent's user (SHA-256 / AES-128), optionally with a wrong key or a context."""
        return SnmpV3(USER, "sha256", auth_key or self.auth_key, "aes128", priv_key or self.priv_key, context)


# Same user, same protocols, different keys: only the keys tell the agents apart.
AGENT_KEYS = [
    ("MARKER-auth-alpha-1d4e", "MARKER-priv-alpha-5b6c", 61),
    ("MARKER-auth-bravo-2e5f", "MARKER-priv-bravo-6c7d", 72),
    ("MARKER-auth-charlie-3f60", "MARKER-priv-charlie-7d8e", 83),
]
WRONG_AUTH = "MARKER-auth-wrong-0a0b"
WRONG_PRIV = "MARKER-priv-wrong-0c0d"
SECRETS = [
    COMMUNITY_OK,
    COMMUNITY_WRONG,
    WRONG_AUTH,
    WRONG_PRIV,
    *(key for auth, priv, _ in AGENT_KEYS for key in (auth, priv)),
]


def _snmpd(d: Path, auth_key: str, priv_key: str, charge: int) -> Snmpd:
    """snmpd serving the rfc1628-ups examples (battery charge `charge`) to user roomguard and COMMUNITY_OK."""
    conf = [
        f"createUser {USER} SHA-256 {auth_key} AES {priv_key}",
        f"rouser {USER} priv",
        f"rocommunity {COMMUNITY_OK} 127.0.0.1",
        "sysDescr roomguard v3 isolation peer",
        *profile_overrides("rfc1628-ups", {CHARGE: charge}),
    ]
    return Snmpd(d, conf, ready=v3_args(USER, auth_key, priv_key))


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Agent]]:
    """Three snmpd agents on different loopback ports, same v3 user, different auth and priv keys."""
    root = tmp_path_factory.mktemp("snmpd-v3-isolation")
    running: list[Snmpd] = []
    try:
        out: list[Agent] = []
        for i, (auth_key, priv_key, charge) in enumerate(AGENT_KEYS):
            running.append(_snmpd(root / f"a{i}", auth_key, priv_key, charge))
            out.append(Agent(running[-1].port, auth_key, priv_key, charge))
        yield out
    finally:
        for agent in running:
            agent.close()


# Generous timeouts: what these tests tell apart is good, auth_error and comm_error, never speed. With
# 1 s, a first SNMPv3 discovery in a burst of eight concurrent polls missed it once on a loaded CI box.
TIMEOUT_S = 3.0


def _target(name: str, port: int, creds: SnmpV2c | SnmpV3, timeout_s: float = TIMEOUT_S) -> PollTarget:
    profile = snmp_profile("rfc1628-ups")
    return PollTarget(
        ref=DeviceRef("s", "r", name, profile.device_class, profile.model),
        reader=SnmpReader(profile, SnmpTarget("127.0.0.1", port, timeout_s, 0, creds)),
        interval_s=1,
        timeout_s=3 * timeout_s + 1,  # a request, then discovery to diagnose a silent drop, with room
    )


def _value(result: PollResult, name: str) -> object:
    return {m.name: m.value for m in result.metrics}.get(name)


# ------------------------------------------------------------------------------- key isolation


async def test_same_user_different_keys_only_misconfigured_devices_fail(agents: list[Agent]) -> None:
    """Five correct devices and three misconfigured ones, same user everywhere, 15 concurrent rounds.

    Keys registered under the user name alone overwrote each other in the shared engine: a wrongly
    keyed device read GOOD values (sent with its neighbour's keys) and correct devices got comm_error or
    a false auth_error (their responses checked with the wrong keys)."""
    a, b, c = agents
    targets = [
        _target("a", a.port, a.creds()),
        _target("b", b.port, b.creds()),
        _target("c", c.port, c.creds()),
        _target("a-again", a.port, a.creds()),  # a second device on the same card, same keys
        _target("b-v2c", b.port, SnmpV2c(COMMUNITY_OK)),
        _target("a-wrong-priv", a.port, a.creds(priv_key=WRONG_PRIV)),
        _target("a-wrong-auth", a.port, a.creds(auth_key=WRONG_AUTH)),
        _target("b-with-c-keys", b.port, c.creds()),  # keys copied from the neighbouring card
    ]
    good = {"a": a.charge, "b": b.charge, "c": c.charge, "a-again": a.charge, "b-v2c": b.charge}
    bad = {"a-wrong-priv", "a-wrong-auth", "b-with-c-keys"}
    poller = Poller(targets, lambda r: asyncio.sleep(0), seed=1)
    problems: list[str] = []
    for rnd in range(ROUNDS):
        for r in await poller.poll_once(concurrency=len(targets)):
            dev = r.ref.device
            if dev in good:
                if r.quality is not Quality.GOOD or _value(r, CHARGE) != good[dev]:
                    problems.append(f"round {rnd} {dev}: {r.quality} {r.error} charge={_value(r, CHARGE)}")
            elif r.quality is not Quality.AUTH_ERROR or any(m.value is not None for m in r.metrics):
                problems.append(f"round {rnd} {dev}: {r.quality} {r.error} charge={_value(r, CHARGE)}")
            assert dev in good or dev in bad
    await poller.close()
    assert not problems, f"{len(problems)} wrong polls of {ROUNDS * len(targets)}:\n" + "\n".join(problems)


async def test_two_agents_same_user_different_correct_keys_are_both_good(agents: list[Agent]) -> None:
    """Two cards, same user, each its own correct keys, no prepare(): GET and GETBULK walk, every round."""
    _, b, c = agents
    tb = SnmpTarget("127.0.0.1", b.port, TIMEOUT_S, 0, b.creds())
    tc = SnmpTarget("127.0.0.1", c.port, TIMEOUT_S, 0, c.creds())
    charge_oid = "1.3.6.1.2.1.33.1.2.4.0"
    for _ in range(ROUNDS):
        gb, gc, wb, wc = await asyncio.gather(
            tb.get([charge_oid]),
            tc.get([charge_oid]),
            tb.walk("1.3.6.1.2.1.33.1.2"),
            tc.walk("1.3.6.1.2.1.33.1.2"),
            return_exceptions=True,
        )
        assert gb == {charge_oid: b.charge}, gb
        assert gc == {charge_oid: c.charge}, gc
        assert isinstance(wb, dict), wb
        assert isinstance(wc, dict), wc
        assert wb[charge_oid] == b.charge
        assert wc[charge_oid] == c.charge


async def test_misconfigured_device_first_does_not_lock_out_the_right_one(agents: list[Agent]) -> None:
    """Whichever device reaches a card first, the wrong keys fail and the right keys work, every time."""
    a = agents[0]
    wrong = SnmpTarget("127.0.0.1", a.port, TIMEOUT_S, 0, a.creds(priv_key=WRONG_PRIV))
    right = SnmpTarget("127.0.0.1", a.port, TIMEOUT_S, 0, a.creds())
    with pytest.raises(AuthFailure):
        await wrong.get([SYS_UPTIME])
    for _ in range(3):
        got_right, got_wrong = await asyncio.gather(
            right.get([SYS_DESCR]), wrong.get([SYS_DESCR]), return_exceptions=True
        )
        assert got_right == {SYS_DESCR: "roomguard v3 isolation peer"}, got_right
        assert isinstance(got_wrong, AuthFailure), got_wrong


# ------------------------------------------------------------------------------- no secret in texts


def _assert_clean(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"secret {leaked} in {text!r}"


def test_repr_and_str_show_no_secret() -> None:
    v2 = SnmpV2c(COMMUNITY_OK)
    v3 = SnmpV3(USER, "sha256", WRONG_AUTH, "aes128", WRONG_PRIV)
    t2, t3 = SnmpTarget("127.0.0.1", 161, credentials=v2), SnmpTarget("127.0.0.1", 161, credentials=v3)
    for obj in (v2, v3, t2, t3):
        _assert_clean(repr(obj))
        _assert_clean(str(obj))
        _assert_clean(f"{obj}: {obj!r} {[obj]}")
    assert repr(v2) == "v2c"
    assert repr(t2) == "SnmpTarget(127.0.0.1:161, v2c)"
    assert f"user={USER}" in repr(v3)
    assert f"user={USER}" in str(t3)
    assert v2 == SnmpV2c(COMMUNITY_OK)  # still compares by value
    assert v2 != SnmpV2c(COMMUNITY_WRONG)


class _GenErrAgent(asyncio.DatagramProtocol):
    """A v2c agent on a real UDP socket answering every request with errorStatus genErr (RFC 3416)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg, _ = decoder.decode(data, asn1Spec=V2.Message())
        request = V2.apiMessage.get_pdu(msg)
        response = V2.apiPDU.get_response(request)
        V2.apiPDU.set_error_status(response, 5)  # genErr
        V2.apiPDU.set_error_index(response, 1)
        V2.apiPDU.set_varbinds(response, V2.apiPDU.get_varbinds(request))
        V2.apiMessage.set_pdu(msg, response)  # the community is echoed
        self.transport.sendto(encoder.encode(msg), addr)


def _st(port: int, creds: SnmpV2c | SnmpV3, timeout_s: float = 0.5) -> SnmpTarget:
    return SnmpTarget("127.0.0.1", port, timeout_s, 0, creds)


async def _get_error(target: SnmpTarget, expected: type[TransportError]) -> TransportError:
    with pytest.raises(expected) as info:
        await target.get([SYS_DESCR])
    return info.value


async def _walk_error(target: SnmpTarget, expected: type[TransportError]) -> TransportError:
    with pytest.raises(expected) as info:
        await target.walk("1.3.6.1.2.1.1")
    return info.value


async def test_error_texts_show_no_secret(agents: list[Agent]) -> None:
    a = agents[0]
    silent = free_udp_port()
    loop = asyncio.get_running_loop()
    generr, _ = await loop.create_datagram_endpoint(_GenErrAgent, local_addr=("127.0.0.1", 0))
    generr_port = generr.get_extra_info("sockname")[1]
    try:
        errors = [
            # A timeout: nothing listens (v2c and v3).
            await _get_error(_st(silent, SnmpV2c(COMMUNITY_OK), 0.3), DeviceTimeout),
            await _get_error(_st(silent, a.creds(), 0.3), DeviceTimeout),
            # A wrong community: snmpd drops it silently (RFC 3584 §5.2.1 snmpInBadCommunityNames).
            await _get_error(_st(a.port, SnmpV2c(COMMUNITY_WRONG)), DeviceTimeout),
            await _walk_error(_st(a.port, SnmpV2c(COMMUNITY_WRONG)), DeviceTimeout),
            # Wrong v3 keys: usmStatsWrongDigests report, or (privacy) a silent drop diagnosed by discovery.
            await _get_error(_st(a.port, a.creds(auth_key=WRONG_AUTH)), AuthFailure),
            await _get_error(_st(a.port, a.creds(priv_key=WRONG_PRIV)), AuthFailure),
            await _walk_error(_st(a.port, a.creds(priv_key=WRONG_PRIV)), AuthFailure),
            # An errorStatus from an agent that took our community.
            await _get_error(_st(generr_port, SnmpV2c(COMMUNITY_OK)), DeviceProtocolError),
        ]
    finally:
        generr.close()
    for exc in errors:
        for text in (str(exc), repr(exc), f"{type(exc).__name__}: {exc}", *map(str, exc.args)):
            _assert_clean(text)
    assert "v2c" in str(errors[0])
    assert f"user={USER}" in str(errors[1])
    assert "genErr" in str(errors[-1])
    # What the collector logs and publishes for such devices: PollResult.error.
    poller = Poller(
        [
            _target("v2c-wrong", a.port, SnmpV2c(COMMUNITY_WRONG), 0.5),
            _target("v3-wrong-priv", a.port, a.creds(priv_key=WRONG_PRIV), 0.5),
        ],
        lambda r: asyncio.sleep(0),
        seed=1,
    )
    for r in await poller.poll_once():
        assert r.error
        _assert_clean(r.error)
