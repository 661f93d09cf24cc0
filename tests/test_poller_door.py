"""Door state through the poller: contact, REX and lock feedback read over Modbus from the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.poller import Poller, PollTarget
from devices.door import DoorTracker
from devices.modbus_profile import ModbusProfile
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusTcpTransport
from devices.reading import DeviceRef, PollResult
from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer


class Clock:
    """Injected wall clock: the door timing is decided by poll timestamps, not by sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def _state(poller: Poller) -> str | None:
    (result,) = await poller.poll_once()
    state = {m.name: m.value for m in result.metrics}["door_state"]
    assert state is None or isinstance(state, str), state
    return state


@pytest.mark.integration
async def test_door_states_from_contact_rex_and_lock_feedback() -> None:
    profile = ProfileRegistry.builtin().get("modbus-door-io")
    assert isinstance(profile, ModbusProfile)
    server = ModbusSimServer("127.0.0.1", 0)
    server.add_device(1, profile, {"door_open": False, "rex": False, "lock_engaged": True})
    await server.start()
    transport = ModbusTcpTransport("127.0.0.1", server.port, 1.0)
    clock = Clock()
    target = PollTarget(
        ref=DeviceRef("s", "r", "door-rear", profile.device_class, profile.model),
        reader=ModbusReader(profile, transport, 1),
        interval_s=5,
        timeout_s=1,
        door=DoorTracker(held_open_after_s=30, access_grant_window_s=10),
    )

    async def sink(_: PollResult) -> None:
        return None

    poller = Poller([target], sink, wall_clock=clock)
    try:
        assert await _state(poller) == "closed"

        # Badge accepted: the controller releases the lock, then the door opens.
        clock.advance(5)
        await server.set_values(1, {"lock_engaged": False})
        assert await _state(poller) == "closed"
        clock.advance(5)
        await server.set_values(1, {"door_open": True})
        assert await _state(poller) == "open"
        clock.advance(20)
        await server.set_values(1, {"lock_engaged": True})
        assert await _state(poller) == "open"
        clock.advance(15)  # 35 s open > 30 s
        assert await _state(poller) == "held_open"
        clock.advance(5)
        await server.set_values(1, {"door_open": False})
        assert await _state(poller) == "closed"

        # Opened with the lock engaged and no REX: forced, and it stays forced while open.
        clock.advance(60)
        await server.set_values(1, {"door_open": True})
        assert await _state(poller) == "forced_open"
        clock.advance(60)
        assert await _state(poller) == "forced_open"
        await server.set_values(1, {"door_open": False})
        clock.advance(5)
        assert await _state(poller) == "closed"

        # Exit by request-to-exit button: authorised.
        clock.advance(60)
        await server.set_values(1, {"rex": True, "door_open": True})
        assert await _state(poller) == "open"
    finally:
        await transport.close()
        await server.stop()
