"""Runs roomguard's poller alone in a process for the scale benchmark and reports its CPU use.

argv[1] is JSON: {"interval": 5, "seconds": 30, "timeout": 2,
"devices": [["modbus", port, unit, model] | ["snmp", port, community, model], ...]}.
Prints one JSON line: cpu_s, wall_s, polls, good, devices, late (polls > 10 % behind their grid).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from collector.poller import Poller, PollTarget
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusTcpTransport
from devices.reader import DeviceReader
from devices.reading import DeviceRef, PollResult, Quality
from devices.registry import ProfileRegistry
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV2c


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    """Poll the given simulated devices for spec['seconds'] and measure."""
    registry = ProfileRegistry.builtin()
    interval = float(spec["interval"])
    timeout = float(spec.get("timeout", 2.0))
    targets: list[PollTarget] = []
    for i, (proto, port, key, model) in enumerate(spec["devices"]):
        profile = registry.get(model)
        reader: DeviceReader
        if proto == "modbus":
            # One connection per device, as separate Modbus TCP devices on a LAN would have.
            reader = ModbusReader(profile, ModbusTcpTransport("127.0.0.1", port, timeout), int(key))  # type: ignore[arg-type]
        else:
            target = SnmpTarget("127.0.0.1", port, timeout, 0, SnmpV2c(str(key)))
            reader = SnmpReader(profile, target)  # type: ignore[arg-type]
        ref = DeviceRef("bench", "r", f"d{i}", profile.device_class, profile.model)
        targets.append(PollTarget(ref=ref, reader=reader, interval_s=interval, timeout_s=timeout))

    counts = {"polls": 0, "good": 0}
    by_device: dict[str, int] = {}
    failures: dict[str, int] = {}

    async def sink(result: PollResult) -> None:
        counts["polls"] += 1
        by_device[result.ref.device] = by_device.get(result.ref.device, 0) + 1
        if result.quality is Quality.GOOD:
            counts["good"] += 1
        else:
            key = f"{result.ref.model}: {(result.error or '').split(':')[0]}"
            failures[key] = failures.get(key, 0) + 1

    poller = Poller(targets, sink, jitter_pct=100, seed=1)
    # Warm-up: connect everything and let the start phases spread, then measure whole intervals.
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(interval * 1.5)
    counts.update(polls=0, good=0)
    by_device.clear()
    failures.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(float(spec["seconds"]))
    cpu1, wall1 = time.process_time(), time.perf_counter()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    expected = int(float(spec["seconds"]) / interval)
    # A grid point on the window's edge may fall just outside it: one poll fewer is not "behind".
    starved = sum(1 for t in targets if by_device.get(t.ref.device, 0) < expected - 1)
    return {
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "polls": counts["polls"],
        "good": counts["good"],
        "devices": len(targets),
        "starved": starved,
        "failures": failures,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))), flush=True)
