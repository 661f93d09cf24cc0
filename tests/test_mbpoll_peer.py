"""Independent peer: mbpoll (libmodbus) reads our simulator and must agree with ModbusReader's values.

mbpoll defaults to 1-based references (we pass -0) and little word order for 32-bit types (we pass -B).
"""

from __future__ import annotations

import asyncio
import re
import shutil

import pytest
from modbus_support import profile

from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusTcpTransport
from devices.sim.modbus_server import ModbusSimServer

pytestmark = pytest.mark.integration
MBPOLL = shutil.which("mbpoll")
LINE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)(?:\s+\((-?\d+)\))?\s*$")
DSE, SHT, INROW, DOOR = 1, 2, 3, 4


async def mbpoll(port: int, unit: int, ref: int, count: int, kind: str, *extra: str) -> dict[int, int]:
    """Run mbpoll once; {address: value} with the signed reading where mbpoll shows one in parentheses."""
    assert MBPOLL, "mbpoll is not installed: apt-get install -y mbpoll (the Modbus peer must not be skipped)"
    args = ["-m", "tcp", "-p", str(port), "-a", str(unit), "-0", "-r", str(ref), "-c", str(count), "-t", kind]
    proc = await asyncio.create_subprocess_exec(
        MBPOLL, *args, *extra, "-1", "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 0, err.decode()
    values: dict[int, int] = {}
    for line in out.decode().splitlines():
        if m := LINE.match(line.strip()):
            values[int(m.group(1))] = int(m.group(3) if m.group(3) is not None else m.group(2))
    assert len(values) == count, out.decode()
    return values


@pytest.fixture
async def rig():
    server = ModbusSimServer("127.0.0.1", 0)
    dse_values = {
        "coolant_temp_c": -7,
        "gen_l1_power_w": -1200,
        "gen_l3n_voltage_v": 241.3,
        "fuel_level_pct": 61,
    }
    server.add_device(DSE, profile("dse-gencomm"), dse_values)
    server.add_device(SHT, profile("sht20-xy-md02"), {"temp_c": -20.5, "rh_pct": 54.6})
    server.add_device(
        INROW, profile("schneider-inrow-sc"), {"supply_air_temp_c": 17.5, "return_air_temp_c": 31.0}
    )
    server.add_device(
        DOOR, profile("modbus-door-io"), {"door_open": True, "rex": False, "lock_engaged": True}
    )
    await server.start()
    transport = ModbusTcpTransport("127.0.0.1", server.port, timeout_s=1.0)
    yield server, transport
    await transport.close()
    await server.stop()


async def ours(transport, model: str, unit: int) -> dict[str, object]:
    return {m.name: m.value for m in await ModbusReader(profile(model), transport, unit).read()}


async def test_dse_u16_s16_u32_s32_agree(rig):
    server, transport = rig
    got = await ours(transport, "dse-gencomm", DSE)
    page4 = await mbpoll(server.port, DSE, 1024, 8, "4")
    assert page4[1024] == got["oil_pressure_kpa"]
    assert page4[1025] == got["coolant_temp_c"] == -7  # s16: mbpoll shows 65529 (-7)
    assert page4[1027] == got["fuel_level_pct"] == 61
    assert page4[1029] / 10 == pytest.approx(got["battery_voltage_v"])
    assert page4[1030] == got["engine_speed_rpm"]
    volts = await mbpoll(server.port, DSE, 1032, 3, "4:int", "-B")  # u32 MSW first, x0.1
    assert [volts[a] / 10 for a in (1032, 1034, 1036)] == pytest.approx(
        [got["gen_l1n_voltage_v"], got["gen_l2n_voltage_v"], got["gen_l3n_voltage_v"]]
    )
    assert got["gen_l3n_voltage_v"] == pytest.approx(241.3)
    watts = await mbpoll(server.port, DSE, 1052, 3, "4:int", "-B")  # s32
    assert [watts[a] for a in (1052, 1054, 1056)] == [
        got["gen_l1_power_w"],
        got["gen_l2_power_w"],
        got["gen_l3_power_w"],
    ]
    assert watts[1052] == -1200
    total = await mbpoll(server.port, DSE, 1798, 1, "4:int", "-B")  # run time u32 seconds
    assert total[1798] == got["run_time_s"]


async def test_dse_word_order_matters_to_mbpoll(rig):
    """Without -B mbpoll reads CDAB: the same registers give a different number, so -B is really tested."""
    server, _ = rig
    little = await mbpoll(server.port, DSE, 1052, 1, "4:int")
    assert little[1052] != -1200


async def test_sht20_input_registers_agree(rig):
    server, transport = rig
    got = await ours(transport, "sht20-xy-md02", SHT)
    regs = await mbpoll(server.port, SHT, 1, 2, "3")
    assert regs[1] / 10 == pytest.approx(got["temp_c"])
    assert got["temp_c"] == pytest.approx(-20.5)
    assert regs[2] / 10 == pytest.approx(got["rh_pct"])


async def test_inrow_long_tenths_fahrenheit_agree(rig):
    server, transport = rig
    got = await ours(transport, "schneider-inrow-sc", INROW)
    longs = await mbpoll(server.port, INROW, 92, 3, "4:int", "-B")
    celsius = {a: (v / 10 - 32) * 5 / 9 for a, v in longs.items()}
    assert celsius[92] == pytest.approx(got["rack_inlet_temp_c"], abs=0.01)
    assert celsius[94] == pytest.approx(got["supply_air_temp_c"], abs=0.01)
    assert got["supply_air_temp_c"] == 17.5
    assert celsius[96] == pytest.approx(got["return_air_temp_c"], abs=0.01)
    assert got["return_air_temp_c"] == 31.0


async def test_door_discrete_inputs_agree(rig):
    server, transport = rig
    got = await ours(transport, "modbus-door-io", DOOR)
    bits = await mbpoll(server.port, DOOR, 0, 3, "1")
    assert [bool(bits[a]) for a in (0, 1, 2)] == [got["door_open"], got["rex"], got["lock_engaged"]]
    assert got["door_open"] is True
