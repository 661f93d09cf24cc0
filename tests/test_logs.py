"""The logs of a roomguard command carry our own warnings, not pymodbus's frame dumps."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
async def test_a_silent_modbus_device_logs_one_warning_and_no_hex_dumps(tmp_path: Path) -> None:
    """Before: every timed-out request added pymodbus's `>>>>> send: 0x0 0x6 …` dump to the log."""
    server = ModbusSimServer("127.0.0.1", 0)
    server.add_device(1, ProfileRegistry.builtin().get("sht20-xy-md02"))  # type: ignore[arg-type]
    server.add_device(2, ProfileRegistry.builtin().get("sht20-xy-md02"))  # type: ignore[arg-type]
    await server.start()
    server.set_silent(2, True)
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: {id: s, name: S}\nrooms: [{id: r1, name: R}]\n"
        "defaults: {poll_interval_s: 0.5, timeout_s: 0.3, retries: 0, backoff_max_s: 0.5}\ndevices:\n"
        + "".join(
            f"  - {{id: th-{u}, name: T, room: r1, profile: sht20-xy-md02,"
            " settings: {resolution: x10},"
            f" modbus: {{host: 127.0.0.1, port: {server.port}, unit_id: {u}}}}}\n"
            for u in (1, 2)
        )
    )
    try:
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "roomguard", "poll", str(site), "--seconds", "5"],
            cwd=ROOT,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        await server.stop()
    assert out.returncode == 0, out.stderr
    assert "th-2 unreachable: DeviceTimeout" in out.stderr
    assert ">>>>>" not in out.stderr, out.stderr[:2000]
    assert "0x0 0x" not in out.stderr
    assert "th-1" in out.stdout
