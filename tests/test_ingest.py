"""Ingest bridge against real mosquitto, InfluxDB 1.6 and VictoriaMetrics: ack only after the write."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from devices.reading import DeviceClass, DeviceRef, Metric, PollResult
from devices.wire import encode_poll, topic_readings
from ingest.bridge import IngestBridge, IngestSettings
from ingest.influx_writer import InfluxV1Writer, InfluxV2Writer, InfluxWriter
from ingest.run import ingest_broker_settings, run_ingest
from siteconfig.config import SiteConfig
from testkit.services import Influxd, Mosquitto, VictoriaMetrics

pytestmark = pytest.mark.integration

PASSWORD_ENV = "ROOMGUARD_TEST_MQTT_PASSWORD"
# Recent: VictoriaMetrics silently drops points outside its retention (1 month in the fixture).
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _site(broker: Mosquitto, influx: dict[str, Any], site_id: str = "t1") -> SiteConfig:
    os.environ[PASSWORD_ENV] = broker.password
    return SiteConfig.model_validate(
        {
            "site": {"id": site_id, "name": "test"},
            "rooms": [{"id": "r1", "name": "room"}],
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "username": broker.username,
                "password": {"env": PASSWORD_ENV},
            },
            "influxdb": influx,
        }
    )


def _poll(site: str, device: str, i: int, value: Any = None) -> PollResult:
    ref = DeviceRef(site, "r1", device, DeviceClass.ENV, "sim-env", {"rack": "R01"})
    temp = 20.0 + i / 100 if value is None else value
    return PollResult(ref, T0 + timedelta(seconds=i), (Metric("temp_c", temp), Metric("door_open", False)))


class Publisher:
    """A plain paho QoS 1 publisher of readings, as the collector would send them."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-pub-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(broker.username, broker.password)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def raw(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def polls(self, site: str, devices: list[str], seqs: range, value: Any = None) -> None:
        infos = [
            self.client.publish(
                topic_readings("roomguard/v1", site, "r1", d), encode_poll(_poll(site, d, i, value), i), qos=1
            )
            for i in seqs
            for d in devices
        ]
        for info in infos:
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.asynccontextmanager
async def _bridge(
    broker: Mosquitto, writer: InfluxWriter, tmp: Path, client: str = "t-ingest", **kw: Any
) -> AsyncIterator[IngestBridge]:
    settings = IngestSettings(
        batch_delay_s=0.2, backoff_first_s=0.2, backoff_cap_s=2.0, session_expiry_s=120, **kw
    )
    brk = ingest_broker_settings(_site(broker, {"url": "http://127.0.0.1:1", "api": "v1", "database": "x"}))
    brk = type(brk)(brk.host, brk.port, client, brk.username, brk.password)
    bridge = IngestBridge(brk, writer, settings, tmp / "dead-letter.jsonl")
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await _until(lambda: bridge.stats.broker_connected, 10)
    await asyncio.sleep(0.3)  # the SUBACK follows the CONNACK; nothing tells us when it arrived
    try:
        yield bridge
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _until(cond: Callable[[], bool], limit_s: float = 30.0) -> None:
    async with asyncio.timeout(limit_s):
        while not cond():  # noqa: ASYNC110 - conditions span paho's thread and a database
            await asyncio.sleep(0.05)


def _influx_counts(influxd: Influxd, measurement: str = "env") -> Counter[tuple[str, int]]:
    rows = influxd.rows(f'SELECT "temp_c" FROM "{measurement}" GROUP BY "device"')
    return Counter((r["device"], r["time"]) for r in rows)


def _expected(devices: list[str], n: int) -> set[tuple[str, int]]:
    return {(d, int((T0 + timedelta(seconds=i)).timestamp()) * 10**9) for d in devices for i in range(n)}


async def test_end_to_end_v1_influxd(mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path) -> None:
    influxd.create_database("ingest_e2e")
    site = _site(mosquitto, {"url": influxd.url, "api": "v1", "database": "ingest_e2e"}, "e2e1")
    stop = asyncio.Event()
    task = asyncio.create_task(run_ingest(site, tmp_path, stop))
    pub = Publisher(mosquitto)
    try:
        await _until(lambda: (tmp_path / "ingest.json").exists(), 10)
        await _until(lambda: json.loads((tmp_path / "ingest.json").read_text())["broker_connected"], 10)
        await asyncio.sleep(0.3)
        devices = ["env-1", "env-2", "env-3"]
        pub.polls("e2e1", devices, range(20))
        await _until(lambda: len(influxd.rows("SELECT temp_c FROM env", "ingest_e2e")) == 60, 20)
        rows = influxd.rows("SELECT * FROM env WHERE device = 'env-2' ORDER BY time", "ingest_e2e")
        first = rows[0]
        assert first["time"] == int(T0.timestamp()) * 10**9
        tags = (first["site"], first["room"], first["model"], first["rack"])
        assert tags == ("e2e1", "r1", "sim-env", "R01")
        assert first["temp_c"] == 20.0
        assert first["door_open"] is False
        assert first["quality"] == "good"
        assert rows[5]["temp_c"] == pytest.approx(20.05)
        await _until(lambda: json.loads((tmp_path / "ingest.json").read_text())["written_points"] == 60, 10)
    finally:
        pub.close()
        stop.set()
        await asyncio.wait_for(task, 30)
    snap = json.loads((tmp_path / "ingest.json").read_text())
    assert snap["received"] == 60
    assert snap["malformed"] == 0
    assert snap["gaps"] == 0
    assert snap["db_state"] == "ok"


async def test_end_to_end_v2_victoria_metrics(
    mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    writer = InfluxV2Writer(victoria_metrics.url, "b", "o", "token")
    pub = Publisher(mosquitto)
    devices = ["vm-1", "vm-2"]
    try:
        async with _bridge(mosquitto, writer, tmp_path, client="t-ingest-vm") as bridge:
            pub.polls("e2e2", devices, range(10))
            await _until(lambda: bridge.stats.written_points == 20, 20)
    finally:
        pub.close()
    series = victoria_metrics.export('{__name__="env_temp_c",site="e2e2"}', min_series=2, min_samples=20)
    by_device = {s["metric"]["device"]: s for s in series}
    assert set(by_device) == set(devices)
    s = by_device["vm-1"]
    assert s["metric"]["room"] == "r1"
    assert s["metric"]["model"] == "sim-env"
    assert s["metric"]["rack"] == "R01"
    assert s["timestamps"][0] == int(T0.timestamp()) * 1000
    assert len(s["timestamps"]) == 10
    assert s["values"][:2] == [20.0, 20.01]


async def test_database_outage_loses_nothing(
    mosquitto: Mosquitto, influxd_private: Influxd, tmp_path: Path
) -> None:
    writer = InfluxV1Writer(influxd_private.url, influxd_private.database, timeout_s=2)
    pub = Publisher(mosquitto)
    devices = [f"out-{n}" for n in range(5)]
    try:
        async with _bridge(mosquitto, writer, tmp_path, client="t-ingest-outage") as bridge:
            pub.polls("outage", devices, range(0, 20))
            await _until(lambda: bridge.stats.written_points == 100, 20)
            influxd_private.stop()
            t_end = time.monotonic() + 20
            i = 20
            while time.monotonic() < t_end:  # messages keep coming during the 20 s outage
                pub.polls("outage", devices, range(i, i + 5))
                i += 5
                await asyncio.sleep(0.5)
            assert bridge.stats.db_state == "retrying"
            assert bridge.stats.backlog > 0
            assert bridge.stats.written_points == 100
            influxd_private.start()
            await _until(lambda: bridge.stats.backlog == 0 and bridge.stats.db_state == "ok", 30)
            await _until(lambda: len(_influx_counts(influxd_private)) == len(devices) * i, 20)
    finally:
        pub.close()
    counts = _influx_counts(influxd_private)
    assert set(counts) == _expected(devices, i)
    assert set(counts.values()) == {1}


async def test_malformed_and_foreign_messages_are_counted_acked_and_skipped(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    influxd.create_database("ingest_bad")
    writer = InfluxV1Writer(influxd.url, "ingest_bad")
    pub = Publisher(mosquitto)
    topic = topic_readings("roomguard/v1", "bad", "r1", "env-1")
    try:
        async with _bridge(mosquitto, writer, tmp_path, client="t-ingest-bad") as bridge:
            pub.polls("bad", ["env-1"], range(0, 3))
            pub.raw(topic, b"\xff\xfe garbage")
            pub.raw(topic, b'{"schema":"someone.else/3","x":1}')
            pub.raw(topic, b'{"schema":"roomguard.readings/1","seq":"x"}')
            pub.raw(topic, b"[1,2,3]")
            pub.polls("bad", ["env-1"], range(3, 6))
            await _until(lambda: bridge.stats.written_points == 6 and bridge.stats.malformed == 4, 20)
            await _until(lambda: bridge.backlog == 0, 10)
        assert "rejected message on" in caplog.text
        assert "not UTF-8 JSON" in caplog.text
    finally:
        pub.close()
    assert len(influxd.rows("SELECT temp_c FROM env", "ingest_bad")) == 6
    # Everything was acked: a new session with the same id gets nothing redelivered.
    async with _bridge(mosquitto, writer, tmp_path, client="t-ingest-bad") as again:
        await asyncio.sleep(1.0)
        assert again.stats.received == 0


async def test_rejected_batch_goes_to_dead_letter_and_does_not_block(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    influxd.create_database("ingest_dl")
    writer = InfluxV1Writer(influxd.url, "ingest_dl")
    pub = Publisher(mosquitto)
    try:
        async with _bridge(mosquitto, writer, tmp_path, client="t-ingest-dl") as bridge:
            pub.polls("dl", ["env-1"], range(0, 3))
            await _until(lambda: bridge.stats.written_points == 3, 20)
            pub.polls("dl", ["env-1"], range(3, 4), value="hot")  # temp_c as string: field type conflict
            await _until(lambda: bridge.stats.dead_lettered >= 1, 20)
            pub.polls("dl", ["env-1"], range(4, 8))
            await _until(lambda: len(influxd.rows("SELECT temp_c FROM env", "ingest_dl")) == 7, 20)
            await _until(lambda: bridge.backlog == 0, 10)
    finally:
        pub.close()
    records = [json.loads(x) for x in (tmp_path / "dead-letter.jsonl").read_text().splitlines()]
    assert records
    assert records[0]["status"] == 400
    assert "field type conflict" in records[0]["reason"]
    assert any('temp_c="hot"' in line for r in records for line in r["lines"])


_CHILD = """
import asyncio, logging, sys
from pathlib import Path
from siteconfig.config import SiteConfig
from ingest.run import run_ingest
logging.basicConfig(level=logging.INFO)
site = SiteConfig.model_validate_json(sys.argv[1])
asyncio.run(run_ingest(site, Path(sys.argv[2]), asyncio.Event()))
"""


def _spawn(site: SiteConfig, state: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, site.model_dump_json(), str(state)],
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=(state / "child.log").open("ab"),
    )


def _snapshot(state: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state / "ingest.json").read_text()))
    except (OSError, ValueError):
        return {}


async def test_ingest_sigkill_mid_stream_loses_nothing(
    mosquitto: Mosquitto, influxd_private: Influxd, tmp_path: Path
) -> None:
    site = _site(
        mosquitto, {"url": influxd_private.url, "api": "v1", "database": influxd_private.database}, "kill"
    )
    devices = [f"k-{n}" for n in range(10)]
    pub = Publisher(mosquitto)
    child = _spawn(site, tmp_path)
    try:
        await _until(lambda: _snapshot(tmp_path).get("broker_connected") is True, 20)
        await asyncio.sleep(0.5)
        pub.polls("kill", devices, range(0, 50))
        await _until(lambda: _snapshot(tmp_path).get("received", 0) > 0, 20)
        pub.polls("kill", devices, range(50, 100))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        pub.polls("kill", devices, range(100, 150))  # queued by the broker for the persistent session
        (tmp_path / "ingest.json").unlink()
        child = _spawn(site, tmp_path)
        await _until(lambda: len(_influx_counts(influxd_private)) == 1500, 40)
    finally:
        pub.close()
        child.send_signal(signal.SIGTERM)
        child.wait(30)
    counts = _influx_counts(influxd_private)
    assert set(counts) == _expected(devices, 150)
    assert set(counts.values()) == {1}


async def test_shared_subscription_splits_the_load(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    influxd.create_database("ingest_shared")
    devices = [f"s-{n}" for n in range(4)]
    pub = Publisher(mosquitto)
    try:
        async with (
            _bridge(
                mosquitto,
                InfluxV1Writer(influxd.url, "ingest_shared"),
                tmp_path / "a",
                client="t-ingest-sh-0",
                shared_group="rg-test",
            ) as a,
            _bridge(
                mosquitto,
                InfluxV1Writer(influxd.url, "ingest_shared"),
                tmp_path / "b",
                client="t-ingest-sh-1",
                shared_group="rg-test",
            ) as b,
        ):
            pub.polls("shared", devices, range(100))
            await _until(lambda: a.stats.written_points + b.stats.written_points >= 400, 30)
            assert a.stats.received > 0
            assert b.stats.received > 0
            assert a.stats.received + b.stats.received == 400
    finally:
        pub.close()
    rows = influxd.rows('SELECT temp_c FROM env GROUP BY "device"', "ingest_shared")
    counts = Counter((r["device"], r["time"]) for r in rows)
    assert set(counts) == _expected(devices, 100)


def test_gzip_setting_reaches_the_writer(tmp_path: Path) -> None:
    """`influxdb.gzip` in the site file turns on gzip for either writer (toward a remote database)."""
    from ingest.run import make_writer
    from siteconfig.config import load_site

    for api, extra in (("v1", "database: d"), ("v2", "bucket: b, org: o")):
        site_file = tmp_path / f"{api}.yaml"
        site_file.write_text(
            "site: {id: s, name: S}\nrooms: [{id: r, name: R}]\n"
            f"influxdb: {{url: 'http://127.0.0.1:1', api: {api}, {extra}, gzip: true}}\n"
        )
        assert make_writer(load_site(site_file)).gzip is True  # type: ignore[attr-defined]
        site_file.write_text(site_file.read_text().replace(", gzip: true", ""))
        assert make_writer(load_site(site_file)).gzip is False  # type: ignore[attr-defined]
