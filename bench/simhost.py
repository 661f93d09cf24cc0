"""Runs simulated devices in their own process for benchmarks, so their CPU is not ours.

Reads a JSON spec on argv[1]: {"modbus": [{"units": [[unit_id, model], ...]}],
"snmp": [{"devices": [[community, model], ...]}]}; prints one line "READY <json ports>" and serves
until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer


async def main(spec: dict[str, Any]) -> None:
    """Start every server in `spec`, report ports, serve until stdin closes."""
    registry = ProfileRegistry.builtin()
    servers: list[Any] = []
    ports: dict[str, list[int]] = {"modbus": [], "snmp": []}
    for group in spec.get("modbus", []):
        m = ModbusSimServer("127.0.0.1", 0)
        for unit, model in group["units"]:
            m.add_device(int(unit), registry.get(model), {})  # type: ignore[arg-type]
        await m.start()
        servers.append(m)
        ports["modbus"].append(m.port)
    for group in spec.get("snmp", []):
        from devices.sim.snmp_agent import SnmpSimAgent

        a = SnmpSimAgent("127.0.0.1", 0)
        for community, model in group["devices"]:
            a.add_device(community, registry.get(model), {})  # type: ignore[arg-type]
        await a.start()
        servers.append(a)
        ports["snmp"].append(a.port)
    print("READY " + json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for s in servers:
        await s.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
