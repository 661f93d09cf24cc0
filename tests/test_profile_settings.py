"""Profile settings: a fact the registers cannot tell (SHT20 clone x10 or x100) is stated per unit in the
site file, served that way by the simulator, and suggested by `roomguard probe modbus --profile` from a
live reading; the poller never guesses."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from modbus_support import profile

from collector.targets import TargetBuilder
from devices.modbus_profile import ModbusProfile
from devices.modbus_transport import ModbusTcpTransport
from devices.probe_settings import format_setting_probes, probe_settings
from devices.reading import Quality
from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer
from devices.sim.room import SimDeviceSpec, SimulatedRoom
from siteconfig.config import load_site
from tests.manual_clock import Clock

SHT = "sht20-xy-md02"


def test_a_choice_replaces_the_scale_of_its_points() -> None:
    base = profile(SHT)
    x100 = base.configured({"resolution": "x100"})
    assert {p.name: p.scale for p in x100.points} == {"temp_c": 0.01, "rh_pct": 0.01}
    assert {p.name: p.scale for p in base.configured({"resolution": "x10"}).points} == {
        "temp_c": 0.1,
        "rh_pct": 0.1,
    }
    assert x100.settings == {}, "a configured profile has nothing left to choose"


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        ({}, "needs setting resolution: x10 | x100"),
        ({"resolution": "x1000"}, "got 'x1000' for setting resolution: x10 | x100"),
        ({"resolution": "x10", "gain": "2"}, "has no setting gain; settings: resolution"),
    ],
)
def test_a_missing_or_wrong_choice_names_the_valid_ones(chosen: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        profile(SHT).configured(chosen)


def test_a_setting_must_name_points_of_the_profile() -> None:
    raw = profile(SHT).model_dump()
    raw["settings"]["resolution"]["choices"]["x10"] = {"temperature": {"scale": 0.1}}
    with pytest.raises(
        ValueError, match=r"settings\.resolution: no point named temperature; points: rh_pct, temp_c"
    ):
        ModbusProfile.model_validate(raw)


def test_profiles_without_settings_refuse_them() -> None:
    registry = ProfileRegistry.builtin()
    with pytest.raises(ValueError, match="profile rfc1628-ups has no setting resolution"):
        registry.for_unit("rfc1628-ups", {"resolution": "x10"})
    with pytest.raises(ValueError, match="profile dse-gencomm has no setting resolution; settings: none"):
        registry.for_unit("dse-gencomm", {"resolution": "x10"})


@pytest.fixture
async def sensors():
    """Three SHT20 clones on one pymodbus server: a x10 unit, a x100 unit, and a x10 unit in a cold store."""
    base = profile(SHT)
    server = ModbusSimServer("127.0.0.1", 0)
    server.add_device(1, base.configured({"resolution": "x10"}), {"temp_c": 23.4, "rh_pct": 48.5})
    server.add_device(2, base.configured({"resolution": "x100"}), {"temp_c": 23.47, "rh_pct": 48.51})
    server.add_device(3, base.configured({"resolution": "x10"}), {"temp_c": 1.0, "rh_pct": 80.0})
    await server.start()
    transport = ModbusTcpTransport("127.0.0.1", server.port, timeout_s=1.0)
    yield server, transport
    await transport.close()
    await server.stop()


@pytest.mark.integration
async def test_probe_suggests_the_resolution_a_unit_really_has(sensors) -> None:
    _, transport = sensors
    suggested = {}
    for unit in (1, 2, 3):
        (probe,) = await probe_settings(profile(SHT), transport, unit)
        suggested[unit] = probe.suggested
    # Unit 3 at 1.0 °C: 10 raw is 1.0 °C at x10 and 0.10 °C at x100, both outside a room's 5..45 °C, so
    # the probe says it cannot tell rather than picking one.
    assert suggested == {1: "x10", 2: "x100", 3: None}


@pytest.mark.integration
async def test_probe_reads_the_unit_once_for_all_choices(sensors) -> None:
    _, transport = sensors

    class Counting:
        reads = 0

        async def read(self, table, address, count, unit_id):
            Counting.reads += 1
            return await transport.read(table, address, count, unit_id)

    (probe,) = await probe_settings(profile(SHT), Counting(), 2)
    assert Counting.reads == 1
    text = format_setting_probes(profile(SHT), [probe])
    assert "resolution x10      rh_pct - (unavailable), temp_c - (unavailable)" in text
    assert "resolution x100     rh_pct 48.51, temp_c 23.47   <- fits" in text
    assert text.endswith("suggested for the site file: settings: {resolution: x100}\n")


@pytest.mark.integration
async def test_probe_command_prints_the_site_file_line(sensors) -> None:
    server, _ = sensors
    outputs = {}
    for unit in (2, 3):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "roomguard", "probe", "modbus", "127.0.0.1", "--port", str(server.port),
            "--unit", str(unit), "--profile", SHT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        outputs[unit] = out.decode()
    assert "settings: {resolution: x100}" in outputs[2]
    assert "cannot tell resolution: no choice fits" in outputs[3]
    assert "suggested" not in outputs[3]


async def test_probe_command_names_the_modbus_profiles_on_a_typo() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomguard", "probe", "modbus", "127.0.0.1", "--profile", "sht20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "--profile: got 'sht20'; valid choices:" in err.decode()
    assert SHT in err.decode()
    assert "rfc1628-ups" not in err.decode()


@pytest.mark.integration
async def test_a_x100_unit_in_the_site_file_is_served_and_polled_at_x100(tmp_path: Path) -> None:
    """Site file → simulator → poll target: the stated resolution is used end to end, no guessing."""
    registry = ProfileRegistry.builtin()
    specs = [
        SimDeviceSpec(
            "th-1", "env", SHT, "modbus", "127.0.0.1", 0, unit_id=1, settings=(("resolution", "x10"),)
        ),
        SimDeviceSpec(
            "th-2", "env", SHT, "modbus", "127.0.0.1", 0, unit_id=2, settings=(("resolution", "x100"),)
        ),
    ]
    room = SimulatedRoom(specs, registry, tick_s=0.05, seed=3, clock=Clock(1_000_000.0))
    await room.start()
    host, port = room.endpoint("th-1")
    try:
        site = tmp_path / "site.yaml"
        site.write_text(
            "site: {id: s, name: S}\nrooms: [{id: r1, name: R}]\ndevices:\n"
            + "".join(
                f"  - {{id: th-{u}, name: T, room: r1, profile: {SHT}, settings: {{resolution: {res}}},"
                f" modbus: {{host: {host}, port: {port}, unit_id: {u}}}}}\n"
                for u, res in ((1, "x10"), (2, "x100"))
            )
        )
        targets = TargetBuilder(load_site(site), registry).targets()
        raw = ModbusTcpTransport(host, port, timeout_s=1.0)
        readings = {t.ref.device: {m.name: m for m in await t.reader.read()} for t in targets}
        registers = {u: await raw.read("input", 1, 2, u) for u in (1, 2)}
        for t in targets:
            await t.reader.close()
        await raw.close()
    finally:
        await room.stop()
    t1, t2 = readings["th-1"]["temp_c"], readings["th-2"]["temp_c"]
    for metric in (t1, t2):
        assert metric.quality is Quality.GOOD
        assert isinstance(metric.value, float)
        assert 15 < metric.value < 35
    # The same room temperature is ten times the raw number on the x100 unit.
    assert registers[1][0] == pytest.approx(float(t1.value or 0) * 10, abs=1)
    assert registers[2][0] == pytest.approx(float(t2.value or 0) * 100, abs=1)
    assert registers[2][0] > 1000


def test_profiles_command_lists_the_settings_to_choose() -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "roomguard", "profiles"], capture_output=True, text=True, check=True
    ).stdout
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(SHT))
    assert lines[at + 1].split() == [
        "settings:",
        "resolution:",
        "x10",
        "|",
        "x100",
        "(per",
        "unit",
        "in",
        "the",
        "site",
        "file)",
    ]
    assert sum("settings:" in line for line in lines) == 2, "sht20-xy-md02 and smartgen-hgm6100n only"
