"""ModbusSimServer + ModbusReader over real pymodbus TCP (and RTU framing) on loopback; no mocks."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from modbus_support import MODBUS_MODELS, profile
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout
from devices.modbus_profile import ModbusProfile
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusSerialTransport, ModbusTcpTransport
from devices.reading import Quality
from devices.sim.modbus_server import ModbusSimServer

pytestmark = pytest.mark.integration
UNITS = {model: unit for unit, model in enumerate(MODBUS_MODELS, start=1)}


@pytest.fixture
async def sim():
    server = ModbusSimServer("127.0.0.1", 0)
    for model, unit in UNITS.items():
        server.add_device(unit, profile(model))
    await server.start()
    assert server.port != 0
    yield server
    await server.stop()


@pytest.fixture
async def transport(sim):
    t = ModbusTcpTransport("127.0.0.1", sim.port, timeout_s=0.5)
    yield t
    await t.close()


def expected_examples(prof: ModbusProfile) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in prof.points:
        for m in p.metric_names():
            out[m] = p.example
    for d in prof.derived:
        # The examples describe one consistent unit: exactly one source of a one_of is true.
        (on,) = [source for source in d.one_of if out[source] is True]
        out[d.name] = d.one_of[on]
    return out


@pytest.mark.parametrize("model", MODBUS_MODELS)
async def test_reads_example_values_back(sim, transport, model):
    prof = profile(model)
    metrics = await ModbusReader(prof, transport, UNITS[model]).read()
    expected = expected_examples(prof)
    assert [m.name for m in metrics] == prof.metric_names() + [d.name for d in prof.derived]
    for m in metrics:
        assert m.quality is Quality.GOOD, m
        exp = expected[m.name]
        assert exp is not None, f"{model}: point of {m.name} has no example"
        if isinstance(exp, float):
            assert m.value == pytest.approx(exp, abs=0.01), m.name
        else:
            assert m.value == exp, m.name


async def test_set_values_changes_what_is_read(sim, transport):
    unit = UNITS["dse-gencomm"]
    reader = ModbusReader(profile("dse-gencomm"), transport, unit)
    await sim.set_values(
        unit,
        {
            "coolant_temp_c": -5,
            "oil_temp_c": None,
            "gen_l1_power_w": -1200,
            "gen_l2n_voltage_v": 231.7,
            "alarm_emergency_stop": "shutdown",
            "engine_state": "cooling_down",
        },
    )
    got = {m.name: m for m in await reader.read()}
    assert got["coolant_temp_c"].value == -5
    assert got["oil_temp_c"].quality is Quality.UNAVAILABLE
    assert got["gen_l1_power_w"].value == -1200
    assert got["gen_l2n_voltage_v"].value == pytest.approx(231.7)
    assert got["alarm_emergency_stop"].value == "shutdown"
    assert got["alarm_low_oil_pressure"].value == "not_active"  # same register, other nibble untouched
    assert got["engine_state"].value == "cooling_down"

    door = UNITS["modbus-door-io"]
    await sim.set_values(door, {"door_open": True, "lock_engaged": False})
    door_reader = ModbusReader(profile("modbus-door-io"), transport, door)
    door_values = {m.name: m.value for m in await door_reader.read()}
    assert door_values == {"door_open": True, "rex": False, "lock_engaged": False}


async def test_masked_fields_share_one_register(sim, transport):
    # APC register 23 carries result, source and modifier (NUT apc_modbus.h): setting one keeps the others.
    unit = UNITS["apc-smartups-modbus"]
    reader = ModbusReader(profile("apc-smartups-modbus"), transport, unit)
    await sim.set_values(unit, {"test_source": "local_ui"})
    got = {m.name: m.value for m in await reader.read()}
    assert (got["test_result"], got["test_source"], got["test_modifier"]) == ("passed", "local_ui", "none")
    raw = await transport.read("holding", 23, 1, unit)
    assert list(raw) == [0x0084]  # bit 2 passed | bit 7 local UI


async def test_set_values_rejects_unknown_metric(sim):
    with pytest.raises(KeyError, match="no metric"):
        await sim.set_values(UNITS["sht20-xy-md02"], {"tmp_c": 1})


async def test_silent_unit_times_out_then_recovers(sim, transport):
    unit = UNITS["sht20-xy-md02"]
    reader = ModbusReader(profile("sht20-xy-md02"), transport, unit)
    sim.set_silent(unit, True)
    started = time.monotonic()
    with pytest.raises(DeviceTimeout):
        await reader.read()
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.5, elapsed  # one try of timeout_s=0.5, no endless pymodbus retries
    # other units on the same gateway keep answering while one is silent
    other = ModbusReader(profile("modbus-contact-io"), transport, UNITS["modbus-contact-io"])
    assert [m.quality for m in await other.read()] == [Quality.GOOD, Quality.GOOD]
    sim.set_silent(unit, False)
    assert [m.value for m in await reader.read()] == [23.4, 48.5]


async def test_illegal_address_block_is_unavailable_rest_reads(sim, transport):
    base = profile("schneider-inrow-sc")
    data = base.model_dump()
    data["points"].append({"name": "cond_outlet_temp_c", "table": "holding", "address": 300, "type": "int32"})
    extended = ModbusProfile.model_validate(data)
    reader = ModbusReader(extended, transport, UNITS["schneider-inrow-sc"])
    got = {m.name: m for m in await reader.read()}
    assert got["cond_outlet_temp_c"].quality is Quality.UNAVAILABLE
    assert got["supply_air_temp_c"].value == pytest.approx(18.5)
    assert sum(m.quality is Quality.GOOD for m in got.values()) == len(base.metric_names())


async def test_other_exception_codes_are_protocol_errors(sim, transport):
    # unit 200 is not simulated: pymodbus' SimCore fails the lookup and answers DEVICE_FAILURE (4)
    with pytest.raises(DeviceProtocolError, match="DEVICE_FAILURE"):
        await transport.read("holding", 0, 1, 200)


async def test_refused_when_nothing_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = ModbusTcpTransport("127.0.0.1", port, timeout_s=0.5)
    with pytest.raises(DeviceRefused):
        await t.read("holding", 0, 1, 1)
    await t.close()


async def test_transport_reconnects_after_server_restart():
    server = ModbusSimServer("127.0.0.1", 0)
    server.add_device(1, profile("sht20-xy-md02"))
    await server.start()
    port = server.port
    t = ModbusTcpTransport("127.0.0.1", port, timeout_s=0.5)
    reader = ModbusReader(profile("sht20-xy-md02"), t, 1)
    assert (await reader.read())[0].value == 23.4
    await server.stop()
    with pytest.raises((DeviceRefused, DeviceTimeout)):
        await reader.read()
    again = ModbusSimServer("127.0.0.1", port)
    again.add_device(1, profile("sht20-xy-md02"), {"temp_c": 30.1})
    await again.start()
    assert (await reader.read())[0].value == 30.1
    await t.close()
    await again.stop()


async def test_shared_transport_serialises_concurrent_readers(sim, transport):
    readers = [ModbusReader(profile(m), transport, UNITS[m]) for m in MODBUS_MODELS] * 5
    results = await asyncio.gather(*(r.read() for r in readers))
    assert all(m.quality is Quality.GOOD for ms in results for m in ms)


async def test_rtu_transport_reads_sht20_over_rtu_framing():
    """The SHT20's native RTU variant: same profile, ModbusSerialTransport (pyserial socket:// URL to an
    RTU-framed pymodbus server stands in for the RS485 line)."""
    dev = SimDevice(
        id=1,
        simdata=(
            [SimData(65520, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(65520, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0x0101, values=[1, 9600], datatype=DataType.REGISTERS)],
            [SimData(1, values=[0xFF33, 546], datatype=DataType.REGISTERS)],
        ),
    )
    server = ModbusTcpServer([dev], address=("127.0.0.1", 0), framer=FramerType.RTU)
    await server.serve_forever(background=True)
    assert isinstance(server.transport, asyncio.Server)  # a listener's (pymodbus types it BaseTransport)
    port = server.transport.sockets[0].getsockname()[1]
    bus = ModbusSerialTransport(f"socket://127.0.0.1:{port}", 9600, "N", 1, 8, 1.0, 0.02)
    try:
        reader = ModbusReader(profile("sht20-xy-md02"), bus, 1)
        started = time.monotonic()
        first = await reader.read()
        second = await reader.read()
        assert [m.value for m in first] == [-20.5, 54.6] == [m.value for m in second]
        assert time.monotonic() - started >= 0.02  # inter-frame delay between the two requests
    finally:
        await bus.close()
        await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves shutdown() unannotated
