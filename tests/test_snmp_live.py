"""SnmpReader against real agents on loopback: snmpsim with real recordings, our SnmpSimAgent, net-snmp."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from devices.reading import Metric, Quality
from devices.sim.snmp_agent import SnmpSimAgent
from devices.snmp_codec import Oid, SnmpValue, decode, encode_profile, encoded_values, plan_requests
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV2c
from tests.snmp_fixtures import GOLDEN, require_tool, snmp_profile, snmp_profiles, snmpsim_port
from tests.test_golden_snmp import assert_matches_golden

__all__ = ["snmpsim_port"]  # re-exported fixture

pytestmark = pytest.mark.integration


def by_name(metrics: list[Metric]) -> dict[str, Metric]:
    """Metrics keyed by name."""
    return {m.name: m for m in metrics}


@pytest.fixture
async def agent() -> AsyncIterator[SnmpSimAgent]:
    """Our simulator serving every SNMP profile with its example values (community = model)."""
    ag = SnmpSimAgent("127.0.0.1", 0)
    for model in snmp_profiles():
        ag.add_device(model, snmp_profile(model))
    await ag.start()
    yield ag
    await ag.stop()


# ------------------------------------------------------------------------------- snmpsim, real walks


@pytest.mark.parametrize(
    ("community", "model", "case"),
    [
        ("eaton-93e", "rfc1628-ups", "eaton-93e"),
        ("eaton-93e", "eaton-xups", "eaton-93e"),
        ("liebert-pex", "liebert-gp-crac", "liebert-pex"),
    ],
)
async def test_reader_against_snmpsim_matches_golden(
    snmpsim_port: int, community: str, model: str, case: str
) -> None:
    reader = SnmpReader(snmp_profile(model), SnmpTarget("127.0.0.1", snmpsim_port, 3, 1, SnmpV2c(community)))
    assert_matches_golden(await reader.read(), GOLDEN / model / case)


async def test_reader_against_snmpsim_geist_within_numeric_ranges(snmpsim_port: int) -> None:
    # The recording uses the numeric variation (wrap=1: min..min+max tenths), so values move with time.
    reader = SnmpReader(
        snmp_profile("geist-watchdog15"), SnmpTarget("127.0.0.1", snmpsim_port, 3, 1, SnmpV2c("geist-wd15"))
    )
    m = by_name(await reader.read())
    assert all(x.quality is Quality.GOOD for x in m.values()), m
    assert 10.0 <= m["temp_c"].value <= 40.0  # type: ignore[operator]
    assert 25 <= m["rh_pct"].value <= 75  # type: ignore[operator]
    assert m["dew_point_c"].value == 0.8
    for probe in ("probe2_temp_c", "probe3_temp_c"):
        assert 10.0 <= m[probe].value <= 40.0  # type: ignore[operator]


# ------------------------------------------------------------------------------- our simulator


@pytest.mark.parametrize("model", snmp_profiles())
async def test_reader_against_sim_agent_returns_examples(agent: SnmpSimAgent, model: str) -> None:
    profile = snmp_profile(model)
    reader = SnmpReader(profile, SnmpTarget("127.0.0.1", agent.port, 2, 1, SnmpV2c(model)))
    got = by_name(await reader.read())
    offline = by_name(decode(profile, encoded_values(encode_profile(profile, {}))))
    assert got == offline
    for p in profile.scalars:
        if p.example is not None:
            assert got[p.name].value == pytest.approx(p.example), p.name
    for t in profile.tables:
        for name, example in t.examples.items():
            assert got[name].value == pytest.approx(example), name


async def test_sim_set_values_sentinel_and_silence(agent: SnmpSimAgent) -> None:
    target = SnmpTarget("127.0.0.1", agent.port, 0.5, 0, SnmpV2c("rfc1628-ups"))
    reader = SnmpReader(snmp_profile("rfc1628-ups"), target)
    await agent.set_values(
        "rfc1628-ups",
        {"output_source": "battery", "battery_charge_pct": None, "runtime_s": 600, "output_load_pct": 77},
    )
    m = by_name(await reader.read())
    assert m["on_battery"].value is True
    assert m["output_source"].value == "battery"
    assert m["battery_charge_pct"].quality is Quality.UNAVAILABLE
    assert m["runtime_s"].value == 600
    assert m["output_load_pct"].value == 77
    door = SnmpReader(
        snmp_profile("netbotz-door"), SnmpTarget("127.0.0.1", agent.port, 1, 0, SnmpV2c("netbotz-door"))
    )
    await agent.set_values("netbotz-door", {"door_open": None})  # -1 null sentinel
    assert by_name(await door.read())["door_open"].quality is Quality.UNAVAILABLE
    await agent.set_values("netbotz-door", {"door_open": True})
    assert by_name(await door.read())["door_open"].value is True
    from devices.errors import DeviceTimeout

    agent.set_silent("rfc1628-ups", True)
    with pytest.raises(DeviceTimeout):
        await reader.read()
    assert by_name(await door.read())["door_open"].value is True  # other devices still answer
    agent.set_silent("rfc1628-ups", False)
    assert by_name(await reader.read())["on_battery"].value is True


# ------------------------------------------------------------------------------- net-snmp as a peer


async def run_tool(*argv: str, wait_s: float = 60) -> str:
    """Run a peer tool without blocking the loop (our agent lives on it); fail on non-zero exit."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MIBS": "", "MIBDIRS": "/nonexistent"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), wait_s)
    assert proc.returncode == 0, f"{argv[0]} failed: {err.decode()}"
    return out.decode()


def parse_net_snmp(value: str) -> SnmpValue:
    """One `-Oqnte` value as plain Python."""
    value = value.strip()
    if value.startswith('"'):
        return value[1:-1].replace('\\"', '"')
    if value.startswith("."):
        return Oid(value.lstrip("."))
    if value.startswith("No Such"):
        from devices.snmp_codec import NO_SUCH

        return NO_SUCH
    return int(value)


@pytest.mark.parametrize("model", snmp_profiles())
async def test_net_snmp_agrees_with_reader(agent: SnmpSimAgent, model: str) -> None:
    profile = snmp_profile(model)
    ours = SnmpReader(profile, SnmpTarget("127.0.0.1", agent.port, 2, 1, SnmpV2c(model)))
    raw = await ours.read_raw()
    plan = plan_requests(profile)
    peer: dict[str, SnmpValue] = {}
    addr = f"127.0.0.1:{agent.port}"
    if plan.get_oids:
        out = await run_tool(
            require_tool("snmpget"), "-v2c", "-c", model, "-On", "-Oqv", "-Ot", "-Oe", addr, *plan.get_oids
        )
        values = out.strip("\n").split("\n")
        assert len(values) == len(plan.get_oids), out
        peer.update({oid: parse_net_snmp(v) for oid, v in zip(plan.get_oids, values, strict=True)})
    out = await run_tool(
        require_tool("snmpbulkwalk"),
        "-v2c",
        "-c",
        model,
        "-On",
        "-Oq",
        "-Ot",
        "-Oe",
        "-Cr25",
        addr,
        "1.3.6.1",
    )
    walked = {}
    for line in out.splitlines():
        oid, _, value = line.partition(" ")
        if value.startswith("No more variables"):  # net-snmp's marker for endOfMibView
            continue
        walked[oid.lstrip(".")] = parse_net_snmp(value)
    for root in plan.walk_roots:
        peer.update({o: v for o, v in walked.items() if o.startswith(root + ".")})
    assert dict(raw.items()) == peer
    assert await ours.read() == decode(profile, peer)
