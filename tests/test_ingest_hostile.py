"""Ingest against real mosquitto and InfluxDB: hostile messages never stop it, and its counters persist."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devices.wire import encode_poll, topic_readings
from ingest.admit import AdmissionRules
from ingest.bridge import IngestBridge, IngestSettings
from ingest.influx_writer import InfluxV1Writer
from ingest.run import ingest_broker_settings, run_ingest
from ingest.seq import SeqStateFile
from siteconfig.config import SiteConfig
from testkit.services import Influxd, Mosquitto
from tests.test_ingest import T0, Publisher, _poll, _site, _until

pytestmark = pytest.mark.integration


def _hostile(site: str) -> list[tuple[str, bytes]]:
    """Messages seen on a real bus, or crafted: each must be dead-lettered and acked, never fatal."""
    topic = topic_readings("roomguard/v1", site, "r1", "env-1")
    good = encode_poll(_poll(site, "env-1", 0), 0).decode()
    overflow = good.replace('"duration_s":0.0', '"duration_s":1' + "0" * 400)
    assert overflow != good
    future = encode_poll(
        _poll(site, "env-1", 0).__class__(
            _poll(site, "env-1", 0).ref, datetime(2200, 1, 1, tzinfo=UTC), _poll(site, "env-1", 0).metrics
        ),
        99,
    )
    intruder = encode_poll(_poll(site, "intruder", 1), 1)
    return [
        (topic, overflow.encode()),
        (topic, b"\xff\xfe not json"),
        (topic, future),
        (topic_readings("roomguard/v1", site, "r1", "intruder"), intruder),
        (topic, json.dumps({"schema": "roomguard.readings/1", "seq": 1, "metrics": [1] * 5}).encode()),
    ]


async def test_hostile_messages_are_dead_lettered_and_ingest_goes_on(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    """Before: the 773-byte reading with a 400-digit duration raised OverflowError, was never acked, and
    stopped ingest on every restart. Now every such message is dead-lettered with its reason and acked."""
    influxd.create_database("hostile")
    site = _site(mosquitto, {"url": influxd.url, "api": "v1", "database": "hostile"}, "hostile")
    site = SiteConfig.model_validate(
        {
            **site.model_dump(mode="json", exclude_none=True),
            "devices": [
                {
                    "id": "env-1",
                    "name": "sensor",
                    "room": "r1",
                    "profile": "sht20-xy-md02",
                    "settings": {"resolution": "x10"},
                    "modbus": {"host": "127.0.0.1", "port": 1502, "unit_id": 1},
                }
            ],
            "ingest": {"known_devices_only": True},
        }
    )
    state = tmp_path / "state"
    pub = Publisher(mosquitto)
    for attempt in range(2):  # the second start proves nothing hostile was left unacked at the broker
        stop = asyncio.Event()
        task = asyncio.create_task(run_ingest(site, state, stop))
        try:
            await _until(lambda: _snap(state).get("broker_connected") is True, 10)
            await asyncio.sleep(0.3)
            if attempt == 0:
                for topic, payload in _hostile("hostile"):
                    pub.raw(topic, payload)
                pub.polls("hostile", ["env-1"], range(1, 6))
                await _until(lambda: _snap(state).get("written_points") == 5, 20)
            else:
                await asyncio.sleep(1.5)
                assert not task.done()
                assert _snap(state)["received"] == 0  # nothing redelivered
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    pub.close()
    snap = _snap(state)
    assert snap["malformed"] + snap["rejected"] == 5, snap
    assert snap["written_points"] == 5  # persisted across the restart
    records = [json.loads(line) for line in (state / "dead-letter.jsonl").read_text().splitlines()]
    reasons = " | ".join(r["reason"] for r in records)
    for expected in (
        "out of float range",
        "not UTF-8 JSON",
        "ingest.max_future_s",
        "not in the site file",
        "missing field",
    ):
        assert expected in reasons, reasons
    assert all(r["payload_sha256"] and r["topic"] for r in records)
    assert len(influxd.rows("SELECT temp_c FROM env", "hostile")) == 5


def _snap(state: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state / "ingest.json").read_text()))
    except (OSError, ValueError):
        return {}


@asynccontextmanager
async def _bridge(
    broker: Mosquitto, influxd: Influxd, database: str, tmp: Path
) -> AsyncIterator[IngestBridge]:
    site = _site(broker, {"url": influxd.url, "api": "v1", "database": database}, "persist")
    state = SeqStateFile(tmp / "ingest.db")
    bridge = IngestBridge(
        ingest_broker_settings(site),
        InfluxV1Writer(influxd.url, database),
        IngestSettings(
            batch_delay_s=0.2, session_expiry_s=120, admission=AdmissionRules(max_past_s=7 * 86400)
        ),
        tmp / "dead-letter.jsonl",
        state,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await _until(lambda: bridge.stats.broker_connected, 10)
    await asyncio.sleep(0.3)
    try:
        yield bridge
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        state.close()


async def test_sequence_holes_and_counters_survive_a_restart_and_late_messages_fill_them(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    """Before: duplicates and missing were in memory only and started from zero after every restart."""
    influxd.create_database("persist")
    pub = Publisher(mosquitto)
    try:
        async with _bridge(mosquitto, influxd, "persist", tmp_path) as bridge:
            pub.polls("persist", ["env-1"], range(0, 5))
            pub.polls("persist", ["env-1"], range(8, 10))  # 5, 6, 7 lost on the way
            pub.polls("persist", ["env-1"], range(3, 5))  # redelivered
            await _until(lambda: bridge.stats.written_points == 9, 20)
            assert (bridge.stats.gaps, bridge.stats.missing, bridge.stats.duplicates) == (1, 3, 2)
        async with _bridge(mosquitto, influxd, "persist", tmp_path) as again:
            assert (again.stats.gaps, again.stats.missing, again.stats.duplicates) == (1, 3, 2)
            assert again.stats.written_points == 9
            pub.polls("persist", ["env-1"], range(5, 8))  # the collector publishes them again
            pub.polls("persist", ["env-1"], range(10, 11))
            await _until(lambda: again.stats.written_points == 13, 20)
            assert (again.stats.missing, again.stats.filled, again.stats.duplicates) == (0, 3, 2)
    finally:
        pub.close()
    times = {r["time"] for r in influxd.rows("SELECT temp_c FROM env", "persist")}
    assert times == {int((T0 + timedelta(seconds=i)).timestamp()) * 10**9 for i in range(11)}
