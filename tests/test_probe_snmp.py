"""Commissioning probe against snmpsim serving real recordings."""

from __future__ import annotations

import pytest

from devices.probe_snmp import SYS_OBJECT_ID, SnmpProbeReport, format_snmp_probe, match_profiles, probe_snmp
from devices.snmp_transport import SnmpTarget, SnmpV2c
from tests.snmp_fixtures import GOLDEN, case_values, snmp_profile, snmp_profiles, snmpsim_port

__all__ = ["snmpsim_port"]

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("community", "models"),
    [
        # The 93E's Network-MS card serves XUPS-MIB and UPS-MIB: both profiles fit, the vendor MIB first.
        ("eaton-93e", ["eaton-xups", "rfc1628-ups"]),
        ("liebert-pex", ["liebert-gp-crac"]),
        ("geist-wd15", ["geist-watchdog15"]),
    ],
)
async def test_probe_names_the_profile(snmpsim_port: int, community: str, models: list[str]) -> None:
    report = await probe_snmp(SnmpTarget("127.0.0.1", snmpsim_port, 3, 1, SnmpV2c(community)))
    assert report.error is None
    assert len(report.values) > 50
    matches = match_profiles(report, [snmp_profile(m) for m in snmp_profiles()])
    assert [m for m, _ in matches] == models
    text = format_snmp_probe(report, matches)
    assert all(model in text for model in models)
    assert (report.sys_object_id or "") in text


async def test_probe_stops_at_limit(snmpsim_port: int) -> None:
    report = await probe_snmp(
        SnmpTarget("127.0.0.1", snmpsim_port, 3, 1, SnmpV2c("liebert-pex")), limit=40, max_repetitions=10
    )
    assert report.truncated
    assert 40 <= len(report.values) < 60
    assert "limit reached" in format_snmp_probe(report, [])


async def test_probe_timeout_is_reported() -> None:
    report = await probe_snmp(SnmpTarget("127.0.0.1", 9, 0.3, 0, SnmpV2c("x")))
    assert report.error is not None
    assert "DeviceTimeout" in report.error
    assert "no shipped profile matches" in format_snmp_probe(report, [])


def test_match_needs_sys_object_id_and_required_oids() -> None:
    report = SnmpProbeReport(
        "t", sys_object_id="1.3.6.1.4.1.476.1.42", values={"1.3.6.1.4.1.476.1.42.2.1.1.0": "Liebert"}
    )
    # An IntelliSlot UPS card has the same sysObjectID but no environmental group: no CRAC match.
    assert match_profiles(report, [snmp_profile("liebert-gp-crac")]) == []


@pytest.mark.parametrize(
    ("case", "models"),
    [
        # CyberPower cards report several sysObjectIDs (.3808.1.1.1, .1.1.3, bare .3808): the enterprise
        # prefix plus the ups subtree names the UPS; an EMD's envir objects name the probe as well.
        ("cyberpower-ups/rmcard-online", ["cyberpower-ups"]),
        ("cyberpower-ups/rmcard-on-battery", ["cyberpower-ups"]),
        ("cyberpower-ups/powerpanel-buck", ["cyberpower-ups"]),
        ("cyberpower-envir/emd-door-open", ["cyberpower-ups", "cyberpower-envir"]),
        ("cyberpower-envir/temp-only-below-zero", ["cyberpower-envir"]),
        # Eaton: ConnectUPS/Network-M2 cards under .534, Network-MS/M2 cards under MGE's .705.1.
        ("eaton-xups/eaton-9px", ["eaton-xups"]),
        ("eaton-xups/network-m2-on-battery", ["eaton-xups"]),
        ("eaton-xups/network-m2-ess-battery-bad", ["eaton-xups"]),
        # Delta InsightPower cards (DeltaUPS-MIB upsv4) report sysObjectID .2254.2.4.
        ("delta-ups/amplon-online", ["delta-ups"]),
        ("delta-ups/on-battery-low", ["delta-ups"]),
        ("delta-ups/three-phase-eco-replace", ["delta-ups"]),
    ],
)
def test_match_names_the_profile_of_a_golden_walk(case: str, models: list[str]) -> None:
    values = case_values(GOLDEN / case)
    report = SnmpProbeReport("golden", sys_object_id=str(values[SYS_OBJECT_ID]), values=values)
    assert [m for m, _ in match_profiles(report, [snmp_profile(m) for m in snmp_profiles()])] == models
