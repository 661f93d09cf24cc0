"""Modbus RTU over a real serial line (a socat pty pair): one owner per bus, frames never collide."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.errors import DeviceTimeout
from devices.modbus_profile import ModbusProfile
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusSerialTransport
from devices.registry import ProfileRegistry

BAUD = 38400


def _sht20(unit: int, temp_x10: int, rh_x10: int) -> SimDevice:
    # SHT20/XY-MD02: FC4 input registers 1 (temperature x10, signed) and 2 (RH x10).
    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, count=8, values=False, datatype=DataType.BITS)],
            [SimData(0, count=8, values=False, datatype=DataType.BITS)],
            [SimData(0x0101, values=[unit, 9600], datatype=DataType.INT16)],
            [SimData(1, values=[temp_x10, rh_x10], datatype=DataType.INT16)],
        ),
    )


def _silent(unit: int) -> SimDevice:
    """A unit that never answers, like a dead slave on the bus (the server drops the request)."""

    async def drop(*_args: object) -> None:
        raise NoSuchIdException(f"unit {unit} is silent")

    device = _sht20(unit, 0, 0)
    device.action = drop
    return device


@pytest.fixture
async def serial_pair(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    assert shutil.which("socat"), "socat is required (installed by scripts/bootstrap.sh)"
    a, b = tmp_path / "bus-a", tmp_path / "bus-b"
    proc = await asyncio.create_subprocess_exec(
        "socat",
        f"pty,raw,echo=0,link={a}",
        f"pty,raw,echo=0,link={b}",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):
        if a.exists() and b.exists():
            break
        await asyncio.sleep(0.05)
    yield str(a), str(b)
    proc.terminate()
    await proc.wait()


@pytest.mark.integration
async def test_two_units_on_one_bus_polled_concurrently(serial_pair: tuple[str, str]) -> None:
    server_side, client_side = serial_pair
    server = ModbusSerialServer(
        [_sht20(1, 215, 456), _sht20(2, -35, 801), _silent(3)],
        port=server_side,
        baudrate=BAUD,
        ignore_missing_devices=True,
    )
    await server.serve_forever(background=True)
    profile = ProfileRegistry.builtin().get("sht20-xy-md02")
    assert isinstance(profile, ModbusProfile)
    bus = ModbusSerialTransport(client_side, BAUD, "N", 1, 8, timeout_s=0.5, inter_frame_delay_s=0.005)
    one, two = ModbusReader(profile, bus, 1), ModbusReader(profile, bus, 2)
    try:
        # Concurrent polls of two units on one bus: the transport's lock serialises the frames, so
        # every answer belongs to its request (a collision would garble CRCs or swap values).
        results = await asyncio.gather(*(r.read() for _ in range(15) for r in (one, two)))
        for i, metrics in enumerate(results):
            values = {m.name: m.value for m in metrics}
            expected = (21.5, 45.6) if i % 2 == 0 else (-3.5, 80.1)
            assert (values["temp_c"], values["rh_pct"]) == expected

        # A unit that never answers times out without poisoning the bus for the others.
        ghost = ModbusReader(profile, bus, 3)
        with pytest.raises(DeviceTimeout):
            await ghost.read()
        values = {m.name: m.value for m in await one.read()}
        assert values["temp_c"] == 21.5
    finally:
        await bus.close()
        await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves shutdown() unannotated
