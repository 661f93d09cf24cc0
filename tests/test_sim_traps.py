"""Simulated room → SNMP traps → the real TrapReceiver: UPS-MIB on-battery and NetBotz door traps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from devices.reading import DeviceClass
from devices.registry import ProfileRegistry
from devices.sim.room import SimDeviceSpec, SimulatedRoom
from devices.traps import TrapEvent, TrapReceiver
from tests.manual_clock import Clock

pytestmark = pytest.mark.integration

UPS = "1.3.6.1.2.1.33.1"


@pytest.fixture
async def receiver() -> AsyncIterator[TrapReceiver]:
    """A real receiver on a free port accepting community `traps`."""
    rx = TrapReceiver("127.0.0.1", 0, communities=["traps"])
    await rx.start()
    yield rx
    await rx.stop()


def make_room(
    rx: TrapReceiver,
    ports: Callable[[], int],
    community: str,
    clock: Clock,
    target: tuple[str, int] | None = None,
) -> SimulatedRoom:
    """An SNMP UPS and an SNMP door on their own agents, plus a Modbus UPS (which has no traps)."""
    specs = [
        SimDeviceSpec("ups-1", "ups", "rfc1628-ups", "snmp", "127.0.0.1", ports(), community="ups1-ro"),
        SimDeviceSpec("door-1", "door", "netbotz-door", "snmp", "127.0.0.1", ports(), community="door1-ro"),
        SimDeviceSpec("ups-2", "ups", "apc-smartups-modbus", "modbus", "127.0.0.1", 0, unit_id=1),
    ]
    return SimulatedRoom(
        specs,
        ProfileRegistry.builtin(),
        tick_s=0.05,
        seed=1,
        clock=clock,
        trap_target=target or ("127.0.0.1", rx.port),
        trap_community=community,
    )


async def next_event(rx: TrapReceiver, wait_s: float = 5) -> TrapEvent:
    """The next decoded trap, or fail."""
    return await asyncio.wait_for(rx.queue.get(), wait_s)


async def test_outage_and_door_traps_reach_the_receiver(
    receiver: TrapReceiver, unused_udp_port_factory: Callable[[], int]
) -> None:
    clock = Clock(1_000_000.0)
    room = make_room(receiver, unused_udp_port_factory, "traps", clock)
    await room.start()
    try:
        ups_src = "127.0.0.1:{}".format(room.endpoint("ups-1")[1])
        door_src = "127.0.0.1:{}".format(room.endpoint("door-1")[1])

        room.trigger("utility_outage")  # no generator in this room: the UPS stays on battery
        await room.tick()
        ev = await next_event(receiver)
        assert (ev.name, ev.device_class, ev.source) == ("upsTrapOnBattery", DeviceClass.UPS, ups_src)
        assert ev.event == {"on_battery": True, "runtime_s": 1800, "seconds_on_battery_s": 0}
        assert ev.varbinds[f"{UPS}.9.7.0"] == 2  # upsConfigLowBattTime rides along, per RFC 1628

        # Persistent trap: nothing more within the minute, resent once a simulated minute has passed.
        clock.t += 30.0
        await room.tick()
        clock.t += 31.0
        await room.tick()
        ev = await next_event(receiver)
        assert ev.name == "upsTrapOnBattery"
        assert ev.event["seconds_on_battery_s"] == 61
        assert ev.event["runtime_s"] == 1740  # 29 minutes left (upsEstimatedMinutesRemaining)

        room.clear("utility_outage")
        await room.tick()
        ev = await next_event(receiver)
        assert (ev.name, ev.source) == ("upsTrapAlarmEntryRemoved", ups_src)
        assert ev.event == {"alarm": "on_battery", "alarm_id": 1, "active": False}

        room.trigger("door_forced", "door-1")
        await room.tick()
        ev = await next_event(receiver)
        assert (ev.name, ev.device_class, ev.source) == ("doorSwitchChange", DeviceClass.DOOR, door_src)
        assert ev.event == {"door_open": True}
        assert ev.varbinds == {"1.3.6.1.4.1.5528.100.4.2.2.1.2.1": 0}
        room.clear("door_forced", "door-1")
        await room.tick()
        ev = await next_event(receiver)
        assert (ev.event, ev.source) == ({"door_open": False}, door_src)

        await asyncio.sleep(0.3)  # anything else in flight (the Modbus UPS must have sent nothing)
        assert receiver.queue.empty()
        assert receiver.dropped == 0
    finally:
        await room.stop()


async def test_wrong_community_is_not_accepted(
    receiver: TrapReceiver, unused_udp_port_factory: Callable[[], int]
) -> None:
    room = make_room(receiver, unused_udp_port_factory, "guess", Clock(1_000_000.0))
    await room.start()
    try:
        room.trigger("utility_outage")
        room.trigger("door_forced")
        await room.tick()
        with pytest.raises(TimeoutError):
            await next_event(receiver, wait_s=1)
    finally:
        await room.stop()


async def test_trap_failure_is_logged_once_and_ticks_go_on(
    receiver: TrapReceiver, unused_udp_port_factory: Callable[[], int], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(1_000_000.0)
    # Agents not started: every trap send fails (network-level failures such as an unreachable receiver
    # never raise at all; asyncio hands them to the protocol's error_received).
    room = make_room(receiver, unused_udp_port_factory, "traps", clock)
    with caplog.at_level(logging.WARNING, logger="devices.sim.room_traps"):
        room.trigger("utility_outage")
        room.trigger("door_forced")
        await room.tick()
        for _ in range(3):
            clock.t += 61.0
            await room.tick()
    messages = [r.getMessage() for r in caplog.records]
    failures = sorted(m.split(":")[0] for m in messages if "sending a trap" in m)
    assert failures == ["door-1", "ups-1"]  # once per device, not once per tick
    assert room.state()["devices"]["ups-1"]["values"]["seconds_on_battery_s"] == 183


async def test_trap_target_port_is_checked(receiver: TrapReceiver) -> None:
    with pytest.raises(ValueError, match="not a UDP port"):
        make_room(receiver, lambda: 0, "traps", Clock(0.0), target=("127.0.0.1", 70_000))
