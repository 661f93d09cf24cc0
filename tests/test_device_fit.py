"""A device that answers but has no data is not `good`: device-level quality, from the pure rule to
`poll --once`, the retained status topic and `roomguard status` (real Modbus simulator, real snmpd)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bus.status_report import format_status
from collector.collect import run_collector
from devices.fit import device_quality
from devices.reading import Metric, Quality
from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer
from siteconfig.config import load_site
from testkit.services import Mosquitto
from tests.snmp_fixtures import Snmpd
from tests.test_collect import Sub, _until

ROOT = Path(__file__).resolve().parent.parent
GOOD, UNAV = Quality.GOOD, Quality.UNAVAILABLE


def _metrics(good: int, missing: int, ident: int = 0) -> list[Metric]:
    return (
        [Metric(f"m{i}", 1.0) for i in range(good)]
        + [Metric(f"x{i}", None, UNAV) for i in range(missing)]
        + [Metric(f"ident_{i}", "ACME") for i in range(ident)]
    )


def test_device_quality_rule() -> None:
    assert device_quality(_metrics(20, 0)) == (GOOD, None)
    assert device_quality(_metrics(11, 11))[0] is GOOD  # half missing: optional objects a unit lacks
    quality, note = device_quality(_metrics(1, 19))
    assert quality is Quality.PARTIAL
    assert note == "19 of 20 metrics unavailable (not implemented?) — wrong profile?"
    quality, note = device_quality(_metrics(0, 20, ident=2))
    assert quality is UNAV
    assert note is not None
    assert "20 of 20" in note
    assert "only identification answered" in note
    assert device_quality([])[0] is UNAV


@pytest.fixture
async def modbus_misfit() -> AsyncIterator[int]:
    """Unit 1 is an SHT20 probe; unit 2 is a probe too, but the site will read it as an APC UPS."""
    server = ModbusSimServer("127.0.0.1", 0)
    probe = ProfileRegistry.builtin().get("sht20-xy-md02")
    server.add_device(1, probe)  # type: ignore[arg-type]
    server.add_device(2, probe)  # type: ignore[arg-type]
    await server.start()
    yield server.port
    await server.stop()


@pytest.fixture
def snmpd_without_ups_mib(tmp_path: Path) -> Iterator[int]:
    """net-snmp snmpd answering its own system MIB only: none of UPS-MIB's objects."""
    agent = Snmpd(
        tmp_path / "snmpd",
        ["rocommunity fit-ro 127.0.0.1", "sysDescr bare agent"],
        ready=["-v2c", "-c", "fit-ro"],
    )
    yield agent.port
    agent.close()


def _site(tmp: Path, modbus_port: int, snmp_port: int, broker: Mosquitto) -> tuple[Path, str]:
    site_id = "fit" + uuid.uuid4().hex[:6]
    path = tmp / "site.yaml"
    path.write_text(f"""site: {{id: {site_id}, name: fit}}
rooms: [{{id: r1, name: room}}]
defaults: {{poll_interval_s: 0.5, timeout_s: 1, retries: 0}}
devices:
  - {{id: th-1, name: probe, room: r1, profile: sht20-xy-md02, settings: {{resolution: x10}},
     modbus: {{host: 127.0.0.1, port: {modbus_port}, unit_id: 1}}}}
  - {{id: ups-modbus, name: UPS, room: r1, profile: apc-smartups-modbus,
     modbus: {{host: 127.0.0.1, port: {modbus_port}, unit_id: 2}}}}
  - {{id: ups-snmp, name: UPS, room: r1, profile: rfc1628-ups,
     snmp: {{host: 127.0.0.1, port: {snmp_port}, community: {{env: ROOMGUARD_TEST_FIT_COMMUNITY}}}}}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username},
       password: {{env: ROOMGUARD_TEST_FIT_MQTT}}}}
outbox: {{release: broker}}
""")
    return path, site_id


@pytest.mark.integration
async def test_misfit_devices_are_not_good_in_poll_status_and_status_topic(
    modbus_misfit: int,
    snmpd_without_ups_mib: int,
    mosquitto: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: an ILLEGAL ADDRESS to every request and a UPS agent without UPS-MIB were `OK` in `poll`,
    `good` in `status` and `online` on MQTT."""
    monkeypatch.setenv("ROOMGUARD_TEST_FIT_COMMUNITY", "fit-ro")
    monkeypatch.setenv("ROOMGUARD_TEST_FIT_MQTT", mosquitto.password)
    path, site_id = _site(tmp_path, modbus_misfit, snmpd_without_ups_mib, mosquitto)

    cmd = [sys.executable, "-m", "roomguard", "poll", str(path), "--once"]
    out = await asyncio.to_thread(
        subprocess.run, cmd, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    headers = {line.split()[0]: line for line in out.stdout.splitlines() if " [" in line}
    assert headers["th-1"].endswith(" OK"), out.stdout
    for device in ("ups-modbus", "ups-snmp"):
        assert "UNAVAILABLE no data:" in headers[device], out.stdout
        assert "wrong profile" in headers[device]
    assert (
        "1/3 devices good; answering without most data (wrong profile?): ups-modbus (unavailable), "
        "ups-snmp (unavailable)" in out.stdout
    )

    sub = Sub(mosquitto, site_id)
    state = tmp_path / "state"
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_collector(
            load_site(path), state, stop, collector_id="c1", metrics_interval_s=5, snapshot_interval_s=0.3
        )
    )
    try:
        await _until(
            lambda: (
                sub.on("/r1/ups-snmp/status")
                and sub.on("/r1/ups-modbus/status")
                and sub.on("/r1/th-1/status")
            ),
            what="status of every device",
        )
        snapshot = state / "collector.json"
        await _until(
            lambda: snapshot.exists() and json.loads(snapshot.read_text())["devices"]["ups-snmp"]["quality"],
            what="snapshot",
        )
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        sub.close()
    assert sub.on("/r1/th-1/status")[-1]["state"] == "online"
    assert sub.on("/r1/th-1/status")[-1]["quality"] == "good"
    for device in ("ups-modbus", "ups-snmp"):
        status = sub.on(f"/r1/{device}/status")[-1]
        assert (status["state"], status["quality"]) == ("offline", "unavailable"), status
        assert "wrong profile" in status["reason"]
        reading = sub.on(f"/r1/{device}/readings")[-1]
        assert reading["quality"] == "unavailable"
    text = format_status(state, site_id)
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("ups-snmp"))
    assert "unavailable" in line
    assert "wrong profile" in line
