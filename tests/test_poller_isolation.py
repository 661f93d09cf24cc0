"""A dead device never delays the others: 20 live + 1 silent Modbus device polled at 1 s."""

from __future__ import annotations

import asyncio
import itertools
import logging
from statistics import mean

import pytest

from collector.poller import Poller, PollTarget
from devices.modbus_profile import ModbusProfile
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusTcpTransport
from devices.reading import DeviceRef, PollResult, Quality
from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer

LIVE = 20
INTERVAL = 1.0
RUN_S = 8.0
LIVE_TIMEOUT = 2.0


@pytest.mark.integration
async def test_live_devices_keep_their_interval_while_one_is_dead(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="collector.poller")
    profile = ProfileRegistry.builtin().get("sht20-xy-md02")
    assert isinstance(profile, ModbusProfile)
    live_server = ModbusSimServer("127.0.0.1", 0)
    for unit in range(1, LIVE + 1):
        live_server.add_device(unit, profile, {"temp_c": 20.0 + unit / 10})
    dead_server = ModbusSimServer("127.0.0.1", 0)
    dead_server.add_device(1, profile, {})
    await live_server.start()
    await dead_server.start()
    dead_server.set_silent(1, True)

    # Each live device has its own connection, as separate Modbus TCP devices would. Their timeout is
    # generous (a loaded 2-core box took over 0.5 s to accept twenty connections at once): what is tested
    # is that the dead device's timeout, longer than everybody's interval, delays nobody else.
    transports = [ModbusTcpTransport("127.0.0.1", live_server.port, LIVE_TIMEOUT) for _ in range(LIVE)]
    targets = [
        PollTarget(
            ref=DeviceRef("s", "r", f"th-{u:02d}", profile.device_class, profile.model),
            reader=ModbusReader(profile, transports[u - 1], u),
            interval_s=INTERVAL,
            timeout_s=LIVE_TIMEOUT,
        )
        for u in range(1, LIVE + 1)
    ]
    # The dead device's timeout is longer than everybody's interval: it must only hurt itself.
    dead_transport = ModbusTcpTransport("127.0.0.1", dead_server.port, 2.5)
    targets.append(
        PollTarget(
            ref=DeviceRef("s", "r", "th-dead", profile.device_class, profile.model),
            reader=ModbusReader(profile, dead_transport, 1),
            interval_s=INTERVAL,
            timeout_s=2.5,
        )
    )
    seen: dict[str, list[float]] = {}
    results: dict[str, list[PollResult]] = {}
    loop = asyncio.get_running_loop()

    async def sink(result: PollResult) -> None:
        seen.setdefault(result.ref.device, []).append(loop.time())
        results.setdefault(result.ref.device, []).append(result)

    poller = Poller(targets, sink, jitter_pct=10, backoff_max_s=8, seed=7)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(RUN_S)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await poller.close()
    for t in [*transports, dead_transport]:
        await t.close()
    await live_server.stop()
    await dead_server.stop()

    worst = 0.0
    for unit in range(1, LIVE + 1):
        times = seen[f"th-{unit:02d}"]
        assert len(times) >= RUN_S / INTERVAL - 1, f"th-{unit:02d} polled only {len(times)} times"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        worst = max(worst, *(abs(g - INTERVAL) / INTERVAL for g in gaps))
        assert abs(mean(gaps) - INTERVAL) < 0.02
        assert all(r.quality is Quality.GOOD for r in results[f"th-{unit:02d}"])
    assert worst < 0.10, f"worst interval deviation {worst:.1%}"

    dead = results["th-dead"]
    assert dead
    assert all(r.quality is Quality.COMM_ERROR and r.error for r in dead)
    assert all(m.value is None for r in dead for m in r.metrics)
    # Backoff: fewer attempts than the live devices made.
    assert len(dead) < len(seen["th-01"]) / 2
    # Logged once at warning level, then quietly.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "th-dead" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
