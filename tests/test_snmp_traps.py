"""Trap receiver: UPS-MIB and door traps sent by pysnmp (our simulator) and net-snmp snmptrap."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from collector.render import format_trap
from devices.reading import DeviceClass
from devices.sim.snmp_agent import SnmpSimAgent
from devices.snmp_codec import Oid
from devices.snmp_transport import SnmpV3
from devices.traps import TrapEvent, TrapReceiver, TrapV3User, decode_trap, smiv2_trap_oid
from tests.snmp_fixtures import require_tool

pytestmark = pytest.mark.integration

UPS = "1.3.6.1.2.1.33.1"
ENGINE_ID = "8000000001020304"
TRAP_USER = SnmpV3("trapuser", "sha256", "authpass123", "aes128", "privpass123")


@pytest.fixture
async def receiver() -> AsyncIterator[TrapReceiver]:
    """A receiver on a free port accepting community `traps` and v3 user trapuser."""
    seen: list[TrapEvent] = []
    rx = TrapReceiver(
        "127.0.0.1",
        0,
        communities=["traps"],
        v3_users=[TrapV3User(TRAP_USER, ENGINE_ID)],
        callback=seen.append,
    )
    await rx.start()
    rx.seen = seen  # type: ignore[attr-defined]
    yield rx
    await rx.stop()


async def next_event(rx: TrapReceiver, wait_s: float = 5) -> TrapEvent:
    """The next decoded trap, or fail."""
    return await asyncio.wait_for(rx.queue.get(), wait_s)


async def snmptrap(*args: str, tool: str = "snmptrap") -> None:
    """net-snmp snmptrap (or snmpinform), without blocking the loop the receiver runs on."""
    proc = await asyncio.create_subprocess_exec(
        require_tool(tool), *args, env={**os.environ, "MIBS": ""}, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()


async def test_pysnmp_ups_traps_are_decoded(receiver: TrapReceiver) -> None:
    sender = SnmpSimAgent()
    await sender.send_trap(
        "127.0.0.1",
        receiver.port,
        "traps",
        "1.3.6.1.2.1.33.2.1",
        {f"{UPS}.2.3.0": 17, f"{UPS}.2.2.0": 42, f"{UPS}.9.7.0": 3},
    )
    ev = await next_event(receiver)
    assert ev.name == "upsTrapOnBattery"
    assert ev.device_class is DeviceClass.UPS
    assert ev.event == {"on_battery": True, "runtime_s": 1020, "seconds_on_battery_s": 42}
    assert ev.source.startswith("127.0.0.1:")
    await sender.send_trap(
        "127.0.0.1",
        receiver.port,
        "traps",
        "1.3.6.1.2.1.33.2.3",
        {f"{UPS}.6.2.1.1.7": 7, f"{UPS}.6.2.1.2.7": Oid(f"{UPS}.6.3.5")},
    )
    ev = await next_event(receiver)
    assert (ev.name, ev.event) == (
        "upsTrapAlarmEntryAdded",
        {"alarm": "temp_bad", "alarm_id": 7, "active": True},
    )
    assert len(receiver.seen) == 2  # type: ignore[attr-defined]


async def test_wrong_community_is_ignored(receiver: TrapReceiver) -> None:
    await SnmpSimAgent().send_trap("127.0.0.1", receiver.port, "guess", "1.3.6.1.2.1.33.2.1", {})
    with pytest.raises(TimeoutError):
        await next_event(receiver, wait_s=1)


async def test_net_snmp_traps_v2c_and_v3(receiver: TrapReceiver) -> None:
    addr = f"127.0.0.1:{receiver.port}"
    await snmptrap(
        "-v2c",
        "-c",
        "traps",
        addr,
        "",
        "1.3.6.1.2.1.33.2.2",
        f"{UPS}.7.3.0",
        "i",
        "3",
        f"{UPS}.7.4.0",
        "s",
        "battery weak",
    )
    ev = await next_event(receiver)
    assert (ev.name, ev.event) == (
        "upsTrapTestCompleted",
        {"test_result": "failed", "test_detail": "battery weak"},
    )
    # NetBotz door switch change: decoded from the doorSwitchSensorValue varbind (0 = open).
    await snmptrap(
        "-v2c",
        "-c",
        "traps",
        addr,
        "",
        "1.3.6.1.4.1.5528.100.10.2.1",
        "1.3.6.1.4.1.5528.100.4.2.2.1.2.1",
        "i",
        "0",
    )
    ev = await next_event(receiver)
    assert ev.device_class is DeviceClass.DOOR
    assert ev.event == {"door_open": True}
    await snmptrap(
        "-v3",
        "-e",
        f"0x{ENGINE_ID}",
        "-u",
        TRAP_USER.user,
        "-l",
        "authPriv",
        "-a",
        "SHA-256",
        "-A",
        TRAP_USER.auth_key,
        "-x",
        "AES",
        "-X",
        TRAP_USER.priv_key,
        addr,
        "",
        "1.3.6.1.2.1.33.2.4",
        f"{UPS}.6.2.1.2.3",
        "o",
        f"{UPS}.6.3.2",
    )
    ev = await next_event(receiver)
    assert (ev.name, ev.event) == (
        "upsTrapAlarmEntryRemoved",
        {"alarm": "on_battery", "alarm_id": 3, "active": False},
    )


async def test_net_snmp_informs_v2c_and_v3(receiver: TrapReceiver) -> None:
    # snmpinform exits 0 only when the receiver acknowledged the inform with a Response-PDU.
    addr = f"127.0.0.1:{receiver.port}"
    await snmptrap(
        "-v2c", "-c", "traps", "-t", "2", "-r", "0", addr, "", "1.3.6.1.2.1.33.2.1", f"{UPS}.2.3.0", "i", "4",
        tool="snmpinform",
    )  # fmt: skip
    ev = await next_event(receiver)
    assert (ev.name, ev.event["runtime_s"]) == ("upsTrapOnBattery", 240)
    # A v3 inform is authoritative at the receiver (RFC 3414 §1.5.1): snmpinform discovers its engine id
    # first, and the user must be known under it too.
    await snmptrap(
        "-v3", "-u", TRAP_USER.user, "-l", "authPriv", "-a", "SHA-256", "-A", TRAP_USER.auth_key,
        "-x", "AES", "-X", TRAP_USER.priv_key, "-t", "2", "-r", "0",
        addr, "", "1.3.6.1.2.1.33.2.2", f"{UPS}.7.3.0", "i", "1",
        tool="snmpinform",
    )  # fmt: skip
    ev = await next_event(receiver)
    assert (ev.name, ev.event["test_result"]) == ("upsTrapTestCompleted", "passed")
    assert receiver.rejects.total() == 0  # engine id discovery is protocol, not a refused credential


async def test_v3_trap_with_wrong_key_is_dropped(receiver: TrapReceiver) -> None:
    await snmptrap(
        "-v3",
        "-e",
        f"0x{ENGINE_ID}",
        "-u",
        TRAP_USER.user,
        "-l",
        "authPriv",
        "-a",
        "SHA-256",
        "-A",
        "wrongauth123",
        "-x",
        "AES",
        "-X",
        TRAP_USER.priv_key,
        f"127.0.0.1:{receiver.port}",
        "",
        "1.3.6.1.2.1.33.2.1",
    )
    with pytest.raises(TimeoutError):
        await next_event(receiver, wait_s=1)


def test_decode_trap_door_null_is_unknown() -> None:
    ev = decode_trap("1.3.6.1.4.1.5528.100.10.2.1", {"1.3.6.1.4.1.5528.100.4.2.2.1.2.4": -1}, "x")
    assert ev.event == {"door_open": None}
    assert decode_trap("1.2.3", {}, "x").device_class is None


async def test_net_snmp_v1_ups_traps_decode_by_the_profile(receiver: TrapReceiver) -> None:
    # A v1 UPS card sends enterprise upsTraps with specific-trap N (RFC 3584 §3.2 (1) for upsTraps.N);
    # pysnmp converts it to snmpTrapOID upsTraps.0.N (§3.1 (2)), which must name the same trap.
    addr = f"127.0.0.1:{receiver.port}"
    ups_traps = "1.3.6.1.2.1.33.2"
    await snmptrap(
        "-v1", "-c", "traps", addr, ups_traps, "192.0.2.7", "6", "1", "",
        f"{UPS}.2.3.0", "i", "17", f"{UPS}.2.2.0", "i", "42", f"{UPS}.9.7.0", "i", "3",
    )  # fmt: skip
    ev = await next_event(receiver)
    assert ev.trap_oid == f"{ups_traps}.0.1"
    assert (ev.name, ev.device_class, ev.means) == ("upsTrapOnBattery", DeviceClass.UPS, "on_battery")
    assert ev.event == {"on_battery": True, "runtime_s": 1020, "seconds_on_battery_s": 42}
    # snmpTrapAddress (the agent-addr field) is kept; the community that came with it is not.
    assert ev.varbinds["1.3.6.1.6.3.18.1.3.0"] == "192.0.2.7"
    assert "1.3.6.1.6.3.18.1.4.0" not in ev.varbinds
    assert "traps" not in ev.varbinds.values()
    await snmptrap(
        "-v1", "-c", "traps", addr, ups_traps, "192.0.2.7", "6", "3", "",
        f"{UPS}.6.2.1.2.7", "o", f"{UPS}.6.3.5",
    )  # fmt: skip
    ev = await next_event(receiver)
    assert ev.name == "upsTrapAlarmEntryAdded"
    assert ev.event == {"alarm": "temp_bad", "alarm_id": 7, "active": True}
    # A generic v1 trap (coldStart) becomes snmpTraps.1 (RFC 3584 §3.1 (2)): known to no profile.
    await snmptrap("-v1", "-c", "traps", addr, ups_traps, "192.0.2.7", "0", "0", "")
    ev = await next_event(receiver)
    assert (ev.trap_oid, ev.name, ev.device_class) == ("1.3.6.1.6.3.1.1.5.1",) * 2 + (None,)


def test_v1_converted_trap_oid_names_the_smiv2_notification() -> None:
    ev = decode_trap("1.3.6.1.2.1.33.2.0.2", {f"{UPS}.7.3.0": 1}, "x")
    assert (ev.name, ev.event["test_result"]) == ("upsTrapTestCompleted", "passed")
    assert smiv2_trap_oid("1.3.6.1.2.1.33.2.0.2") == "1.3.6.1.2.1.33.2.2"
    assert smiv2_trap_oid("1.3.6.1.6.3.1.1.5.1") is None
    assert smiv2_trap_oid("0.1") is None


async def test_every_varbind_of_known_and_unknown_traps_is_kept(receiver: TrapReceiver) -> None:
    addr = f"127.0.0.1:{receiver.port}"
    await snmptrap(
        "-v2c", "-c", "traps", addr, "", "1.3.6.1.2.1.33.2.1",
        f"{UPS}.2.3.0", "i", "17", f"{UPS}.2.2.0", "i", "42", f"{UPS}.9.7.0", "i", "3",
    )  # fmt: skip
    ev = await next_event(receiver)
    assert ev.event == {"on_battery": True, "runtime_s": 1020, "seconds_on_battery_s": 42}
    assert ev.carried == {f"{UPS}.9.7.0": 3}  # upsConfigLowBattTime: carried by the MIB, not a field
    assert f"  {UPS}.9.7.0=3" in format_trap(ev, "ups-1")
    await snmptrap(
        "-v2c", "-c", "traps", addr, "", "1.3.6.1.4.1.99.0.7", "1.3.6.1.4.1.99.1.0", "s", "fan 2 stalled"
    )
    ev = await next_event(receiver)
    assert (ev.name, ev.event, ev.carried) == (
        "1.3.6.1.4.1.99.0.7",
        {},
        {"1.3.6.1.4.1.99.1.0": "fan 2 stalled"},
    )
    assert format_trap(ev, None).endswith("TRAP    1.3.6.1.4.1.99.0.7  1.3.6.1.4.1.99.1.0='fan 2 stalled'")
