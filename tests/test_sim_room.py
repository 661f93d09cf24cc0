"""SimulatedRoom end to end: real Modbus TCP and SNMP endpoints on loopback, scenarios over HTTP."""

import aiohttp
import pytest

from devices.errors import DeviceTimeout
from devices.modbus_profile import ModbusProfile
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusTcpTransport
from devices.reading import Quality, Value
from devices.registry import ProfileRegistry
from devices.sim.room import SimDeviceSpec, SimulatedRoom
from devices.snmp_profile import SnmpProfile
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV2c
from tests.manual_clock import Clock

pytestmark = pytest.mark.integration


@pytest.fixture
async def rig():
    registry = ProfileRegistry.builtin()
    clock = Clock(1_000_000.0)
    specs = [
        SimDeviceSpec("gen-1", "genset", "dse-gencomm", "modbus", "127.0.0.1", 0, unit_id=10),
        SimDeviceSpec(
            "th-a01",
            "env",
            "sht20-xy-md02",
            "modbus",
            "127.0.0.1",
            0,
            unit_id=1,
            zone="row-a",
            settings=(("resolution", "x10"),),
        ),
        SimDeviceSpec("ups-1", "ups", "rfc1628-ups", "snmp", "127.0.0.1", 0, community="ups1-ro"),
    ]
    gen_profile, env_profile = registry.get("dse-gencomm"), registry.get("sht20-xy-md02")
    ups_profile = registry.get("rfc1628-ups")
    assert isinstance(gen_profile, ModbusProfile)
    assert isinstance(env_profile, ModbusProfile)
    assert isinstance(ups_profile, SnmpProfile)
    room = SimulatedRoom(specs, registry, tick_s=0.05, seed=3, clock=clock)
    await room.start()
    http_port = await room.start_http("127.0.0.1", 0)
    mb_host, mb_port = room.endpoint("gen-1")
    transport = ModbusTcpTransport(mb_host, mb_port, timeout_s=0.5)
    gen = ModbusReader(gen_profile, transport, 10)
    env = ModbusReader(env_profile, transport, 1)
    snmp_host, snmp_port = room.endpoint("ups-1")
    target = SnmpTarget(snmp_host, snmp_port, timeout_s=0.5, retries=0, credentials=SnmpV2c("ups1-ro"))
    ups = SnmpReader(ups_profile, target)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{http_port}") as http:
        yield room, clock, http, gen, env, ups
    await gen.close()
    await env.close()
    await ups.close()
    await transport.close()
    await room.stop()


async def values(reader: ModbusReader | SnmpReader) -> dict[str, Value]:
    return {m.name: m.value for m in await reader.read()}


def num(v: Value) -> float:
    """A value that must be numeric (readings are typed as the whole Value union)."""
    assert isinstance(v, (int, float)), v
    return v


async def test_outage_over_http_changes_values_on_both_wires(rig) -> None:
    room, clock, http, gen, _, ups = rig
    u, g = await values(ups), await values(gen)
    assert (u["output_source"], u["on_battery"], u["input_voltage_v"]) == ("normal", False, 220)
    assert (g["control_mode"], g["engine_state"], g["fuel_level_pct"]) == ("auto", "stopped", 85)

    async with http.post("/scenarios/utility_outage") as r:
        assert r.status == 200
        assert (await r.json())["active"][0]["scenario"] == "utility_outage"
    u = await values(ups)
    assert (u["output_source"], u["on_battery"], u["input_voltage_v"]) == ("battery", True, 0)

    clock.t += 6.0
    await room.tick()
    g = await values(gen)
    assert g["engine_state"] == "warming_up"
    assert g["starts_count"] == 1

    clock.t += 14.0
    await room.tick()
    g, u = await values(gen), await values(ups)
    assert (g["engine_state"], g["engine_speed_rpm"], g["gen_freq_hz"]) == ("running", 1800, 60.0)
    assert num(g["gen_power_w"]) > 30_000
    assert u["output_source"] == "normal"
    assert u["on_battery"] is False

    async with http.delete("/scenarios/utility_outage") as r:
        assert r.status == 200
        assert (await r.json())["was_active"] is True
    clock.t += 200.0
    await room.tick()
    g = await values(gen)
    assert g["engine_state"] == "stopped"
    assert num(g["run_time_s"]) >= 60


async def test_sensor_fault_and_silence_seen_by_readers(rig) -> None:
    _, _, http, gen, env, ups = rig
    t = await values(env)
    assert 20.5 <= num(t["temp_c"]) <= 24.5

    # SNMP can say "unavailable" (noSuchInstance / sentinel): every metric reads as unavailable.
    async with http.post("/scenarios/sensor_fault", params={"device": "ups-1"}) as r:
        assert r.status == 200
    metrics = await ups.read()
    assert metrics
    assert {m.quality for m in metrics} == {Quality.UNAVAILABLE}
    assert all(m.value is None for m in metrics)
    # The SHT20 map has no sentinel: a dead probe stops answering instead.
    async with http.post("/scenarios/sensor_fault", params={"device": "th-a01"}) as r:
        assert r.status == 200
    with pytest.raises(DeviceTimeout):
        await env.read()
    async with http.delete("/scenarios/sensor_fault") as r:
        assert r.status == 200
    assert isinstance((await values(env))["temp_c"], float)
    assert (await values(ups))["output_source"] == "normal"

    async with http.post("/scenarios/device_silent", params={"device": "ups-1"}) as r:
        assert r.status == 200
    with pytest.raises(DeviceTimeout):
        await ups.read()
    assert (await values(gen))["engine_state"] == "stopped"  # the others keep answering
    async with http.delete("/scenarios/device_silent") as r:
        assert r.status == 200
    assert (await values(ups))["output_source"] == "normal"


async def test_crac_less_room_rejects_crac_failure_and_unknown_names(rig) -> None:
    http = rig[2]
    async with http.post("/scenarios/earthquake") as r:
        assert r.status == 400
        body = await r.json()
        assert "unknown scenario 'earthquake'" in body["error"]
        assert "utility_outage" in body["valid"]
    async with http.delete("/scenarios/earthquake") as r:
        assert r.status == 400
    async with http.post("/scenarios/crac_failure") as r:
        assert r.status == 400
        assert "needs a crac device" in (await r.json())["error"]
    async with http.post("/scenarios/door_forced", params={"device": "nope"}) as r:
        assert r.status == 400


async def test_scenarios_list_and_state_are_json(rig) -> None:
    _, _, http, gen, _, _ = rig
    async with http.get("/scenarios") as r:
        assert r.status == 200
        listing = await r.json()
    by_name = {s["name"]: s for s in listing}
    assert by_name["utility_outage"]["zh"].startswith("市電中斷")
    assert by_name["generator_monthly_test"]["en"].startswith("Generator monthly test")
    async with http.post("/scenarios/generator_monthly_test") as r:
        assert r.status == 200
    async with http.get("/state") as r:
        state = await r.json()
    assert state["active"][0]["scenario"] == "generator_monthly_test"
    assert state["devices"]["gen-1"]["values"]["control_mode"] == "test_on_load"
    assert state["devices"]["ups-1"]["protocol"] == "snmp"
    assert "ups1-ro" not in str(state)  # the community is a secret
    assert (await values(gen))["control_mode"] == "test_on_load"
