"""Poll targets from a site file: shared Modbus transports honour every device's timeout and the site's
retries, whatever order the devices are listed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.targets import TargetBuilder
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusTcpTransport
from devices.registry import ProfileRegistry
from devices.snmp_reader import SnmpReader
from siteconfig.config import SiteConfig, load_site

SITE = """\
site: {{id: t1, name: T, timezone: Asia/Taipei}}
rooms: [{{id: r1, name: R1}}]
defaults: {{poll_interval_s: 5, timeout_s: 2, retries: {retries}}}
mqtt: {{host: 127.0.0.1, port: 1883}}
devices:
{devices}
"""
SHT = (
    "  - {{id: {id}, name: {id}, room: r1, profile: sht20-xy-md02, {timeout}"
    "settings: {{resolution: x10}}, "
    "modbus: {{host: 127.0.0.1, port: 5020, unit_id: {unit}}}}}"
)
UPS = (
    "  - {id: ups-1, name: UPS, room: r1, profile: rfc1628-ups,"
    " snmp: {host: 127.0.0.1, port: 16100, version: v2c, community: {env: T_COMMUNITY}}}"
)


def _site(tmp_path: Path, devices: list[str], retries: int = 1) -> SiteConfig:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(retries=retries, devices="\n".join(devices)))
    return load_site(path)


def _sht(device: str, unit: int, timeout: float | None = None) -> str:
    return SHT.format(id=device, unit=unit, timeout=f"timeout_s: {timeout}, " if timeout else "")


@pytest.mark.parametrize("order", [("fast", "slow"), ("slow", "fast")])
def test_a_shared_gateway_waits_as_long_as_its_slowest_device(tmp_path: Path, order: tuple[str, str]) -> None:
    timeouts = {"fast": 0.5, "slow": 4.0}
    devices = [_sht(name, unit, timeouts[name]) for unit, name in enumerate(order, start=1)]
    builder = TargetBuilder(_site(tmp_path, devices, retries=2), ProfileRegistry.builtin())
    targets = builder.targets()
    transports = builder.transports()
    assert len(transports) == 1  # one gateway, one transaction at a time
    tcp = transports[0]
    assert isinstance(tcp, ModbusTcpTransport)
    assert (tcp.timeout_s, tcp.retries) == (4.0, 2)
    assert all(isinstance(t.reader, ModbusReader) and t.reader.transport is tcp for t in targets)
    # Each poll keeps its own deadline (its timeout, covering the retries).
    assert {t.ref.device: (t.timeout_s, t.retries) for t in targets} == {"fast": (0.5, 2), "slow": (4.0, 2)}


def test_site_retries_reach_snmp_and_modbus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_COMMUNITY", "t-community")
    builder = TargetBuilder(_site(tmp_path, [_sht("th-1", 1), UPS], retries=3), ProfileRegistry.builtin())
    by_id = {t.ref.device: t for t in builder.targets()}
    modbus, snmp = by_id["th-1"].reader, by_id["ups-1"].reader
    assert isinstance(modbus, ModbusReader)
    assert isinstance(snmp, SnmpReader)
    assert isinstance(modbus.transport, ModbusTcpTransport)
    assert modbus.transport.retries == 3
    assert snmp.target.retries == 3
