"""The simulated room's memory stays bounded however long it runs and whatever scenarios it plays."""

import pytest

from devices.registry import ProfileRegistry
from devices.sim import room as room_module
from devices.sim.modbus_server import ModbusSimServer
from devices.sim.room import SimDeviceSpec, SimulatedRoom
from tests.manual_clock import Clock

GENSET = SimDeviceSpec("gen-1", "genset", "dse-gencomm", "modbus", "127.0.0.1", 0, unit_id=10)
DOOR = SimDeviceSpec("door-rear", "door", "modbus-door-io", "modbus", "127.0.0.1", 0, unit_id=1)


def _room(*specs: SimDeviceSpec) -> tuple[SimulatedRoom, Clock]:
    clock = Clock(1_000_000.0)
    # Not started: ticks update the model and the servers' values without any socket.
    return SimulatedRoom(list(specs), ProfileRegistry.builtin(), seed=1, clock=clock), clock


async def test_genset_run_time_does_not_grow_the_adapt_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # A monthly test serves a new run_time_s every second: each value used to stay cached for ever.
    monkeypatch.setattr(room_module, "MAX_ADAPTED", 64)
    room, clock = _room(GENSET)
    served = room._served[0]
    room.trigger("generator_monthly_test")
    sizes = []
    for _ in range(600):
        clock.t += 1.0
        await room.tick()
        sizes.append(len(served.adapted))
    run_time = room.model.values("gen-1")["run_time_s"]
    assert isinstance(run_time, int)
    assert run_time > 3 * 64  # far more distinct values than the bound
    assert max(sizes) <= 64
    # Starting the cache over changes nothing on the wire: the server still serves the model's value.
    server = room._servers[0]
    assert isinstance(server, ModbusSimServer)
    assert server.values(10)["run_time_s"] == run_time


async def test_steady_room_keeps_a_small_adapt_cache() -> None:
    room, clock = _room(GENSET, DOOR)
    for _ in range(300):
        clock.t += 1.0
        await room.tick()
    assert all(len(s.adapted) < room_module.MAX_ADAPTED for s in room._served)


@pytest.mark.parametrize("drain", [False, True])
async def test_undrained_access_events_keep_only_the_newest(drain: bool) -> None:
    # `roomguard simulate` never drains them: every held-open door used to add one for ever.
    room, clock = _room(DOOR)
    for _ in range(3 * room_module._MAX_EVENTS):
        clock.t += 1.0
        room.trigger("door_held_open")
        await room.tick()
        if drain:
            assert len(room.drain_events()) == 1
    events = room.drain_events()
    if drain:
        assert events == []
    else:
        assert len(events) == room_module._MAX_EVENTS
        assert events[-1].ts == max(e.ts for e in events)  # the newest kept, oldest first
        assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert room.drain_events() == []
