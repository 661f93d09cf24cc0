"""Acceptance: the simulated example room → MQTT → InfluxDB, every device queryable, with both writers.

`roomguard simulate` serves the 14 devices of deploy/examples/site.yaml, `roomguard run` (collector and
ingest in one process) polls them through a real mosquitto into InfluxDB 1.6 (the v1 `/write` writer) or
VictoriaMetrics (the v2 write API through influxdb-client).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from compliance.items import ITEMS
from devices.registry import ProfileRegistry
from devices.yamlload import read_yaml
from testkit.example_site import ROOT, SECRETS, example_site
from testkit.services import Influxd, Mosquitto, VictoriaMetrics

pytestmark = pytest.mark.integration

COMPLIANCE_ITEMS = {item.key for item in ITEMS}


def _mqtt(broker: Mosquitto) -> str:
    return (
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username},"
        " password: {env: ROOMGUARD_MQTT_PASSWORD}}\n"
    )


@contextmanager
def _room_and_run(site: Path, http_port: int, broker: Mosquitto, state: Path) -> Iterator[None]:
    env = {**os.environ, **SECRETS, "ROOMGUARD_MQTT_PASSWORD": broker.password}
    sim = subprocess.Popen(
        [sys.executable, "-m", "roomguard", "simulate", str(site), "--http-port", str(http_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2)
    log = (state.parent / "run.log").open("wb")
    run = subprocess.Popen(
        [sys.executable, "-m", "roomguard", "run", str(site), "--state-dir", str(state)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        yield
    finally:
        for p in (run, sim):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def _number(v: object) -> float:
    """A numeric column of an InfluxDB JSON row (time is epoch ns, fields are JSON numbers)."""
    assert isinstance(v, (int, float, str)), v
    return float(v)


def _devices(site: Path) -> dict[str, dict[str, object]]:
    return {str(d["id"]): d for d in read_yaml(site)["devices"]}


def test_every_device_reaches_influxdb_v1_with_tags_units_and_times(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    influxd.create_database("e2e_v1")
    site, http_port = example_site(
        tmp_path / "site.yaml",
        mqtt=_mqtt(mosquitto),
        influxdb=f"influxdb: {{url: 'http://127.0.0.1:{influxd.port}', api: v1, database: e2e_v1}}\n",
    )
    devices = _devices(site)
    registry = ProfileRegistry.builtin()
    started = time.time_ns()
    with _room_and_run(site, http_port, mosquitto, tmp_path / "state"):
        deadline = time.monotonic() + 90
        seen: dict[str, dict[str, object]] = {}
        # Every configured device, and the collector's own health readings (class system, every 10 s),
        # which the example site's `ingest.known_devices_only` must not refuse.
        while time.monotonic() < deadline and not (
            set(devices) <= set(seen) and any(d.startswith("collector-") for d in seen)
        ):
            for row in influxd.rows(
                f'SELECT * FROM /.*/ WHERE time >= {started} GROUP BY "device"', "e2e_v1"
            ):
                seen.setdefault(str(row["device"]), row)
            time.sleep(1)
    missing = set(devices) - set(seen)
    assert not missing, (
        f"devices never written: {sorted(missing)}; log: {(tmp_path / 'run.log').read_text()[-3000:]}"
    )
    assert any(d.startswith("collector-") for d in seen), (
        "the collector's own health never reached the database"
    )
    assert not (tmp_path / "state" / "dead-letter.jsonl").exists(), (
        tmp_path / "state" / "dead-letter.jsonl"
    ).read_text()[:2000]
    now = time.time_ns()
    for device, row in seen.items():
        if device not in devices:
            # The collector's own health (class system), or a CC-16000 check result (class compliance,
            # published by the compliance process of `roomguard run`).
            assert device.startswith("collector-") or device in COMPLIANCE_ITEMS, device
            continue
        cfg = devices[device]
        profile = registry.get(str(cfg["profile"]))
        assert row["site"] == "tpe-hq"
        assert row["room"] == cfg["room"]
        assert row["model"] == profile.model
        if "zone" in cfg:
            assert row["zone"] == cfg["zone"]
        assert isinstance(row["time"], (int, float, str)), row
        assert started <= int(row["time"]) <= now, device  # stamped at poll time, UTC, ns
        assert row["quality"] == "good", (device, row)
    # Units are in the field names and normalised by the profiles: spot-check a few physical values.
    env_row = seen["th-a01"]
    assert 10 <= _number(env_row["temp_c"]) <= 40
    assert 0 <= _number(env_row["rh_pct"]) <= 100
    assert 15 <= _number(seen["crac-2"]["return_air_temp_c"]) <= 35  # tenths °F → °C
    assert 0 <= _number(seen["ups-1"]["battery_charge_pct"]) <= 100


def test_every_device_reaches_victoriametrics_through_the_v2_writer(
    mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    site, http_port = example_site(
        tmp_path / "site.yaml",
        mqtt=_mqtt(mosquitto),
        influxdb=(
            f"influxdb: {{url: 'http://127.0.0.1:{victoria_metrics.port}', api: v2, bucket: e2e_v2,"
            " org: tpe, token: {env: ROOMGUARD_INFLUX_TOKEN}}\n"
        ),
    )
    devices = _devices(site)
    with _room_and_run(site, http_port, mosquitto, tmp_path / "state"):
        deadline = time.monotonic() + 90
        names: set[str] = set()
        while time.monotonic() < deadline and not set(devices) <= names:
            series = victoria_metrics.export('{site="tpe-hq"}', min_series=1, timeout_s=2)
            names = {s["metric"].get("device", "") for s in series}
            time.sleep(1)
        series = victoria_metrics.export('{site="tpe-hq"}', min_series=1, timeout_s=2)
    assert set(devices) <= {s["metric"].get("device") for s in series}, sorted(names)
    # VictoriaMetrics names a series measurement_field, with the line-protocol tags as labels.
    th = [
        s for s in series if s["metric"].get("device") == "th-a01" and s["metric"]["__name__"] == "env_temp_c"
    ]
    assert th, "env_temp_c of th-a01 missing"
    assert th[0]["metric"]["room"] == "mr1"
    assert all(10 <= v <= 40 for v in th[0]["values"])
