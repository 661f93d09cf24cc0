"""The collector against a real mosquitto and a simulated Modbus room: topics, seq, status, drops."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from snmp_fixtures import free_udp_port

from bus.status_report import format_status
from collector.collect import WILL_REASON, run_collector
from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer
from siteconfig.config import SiteConfig, load_site
from testkit.services import Influxd, Mosquitto
from tests.test_snmp_traps import snmptrap

ON_BATTERY = "1.3.6.1.2.1.33.2.1"

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_ENV = "ROOMGUARD_MQTT_PASSWORD"
TRAP_COMMUNITY_ENV = "ROOMGUARD_TEST_TRAP_COMMUNITY"


def _site_yaml(
    tmp: Path,
    broker: Mosquitto,
    modbus_port: int,
    *,
    max_bytes: int | None = None,
    influx: Influxd | None = None,
    trap_port: int | None = None,
) -> tuple[Path, str]:
    site_id = "t" + uuid.uuid4().hex[:8]  # own topics on the shared broker, no retained leftovers
    devices = "".join(
        f"""  - id: th-{u}
    name: sensor {u}
    room: r1
    profile: sht20-xy-md02
    settings: {{resolution: x10}}
    modbus: {{host: 127.0.0.1, port: {modbus_port}, unit_id: {u}}}
"""
        for u in (1, 2)
    )
    text = f"""site: {{id: {site_id}, name: test}}
rooms: [{{id: r1, name: room 1}}]
defaults: {{poll_interval_s: 0.2, timeout_s: 0.3, retries: 0, jitter_pct: 0, backoff_max_s: 0.5}}
devices:
{devices}mqtt:
  host: 127.0.0.1
  port: {broker.port}
  username: {broker.username}
  password: {{env: {PASSWORD_ENV}}}
"""
    # No ingest confirms anything in these collector-only tests: readings leave the outbox on PUBACK.
    # (With ingest, `test_run_writes_readings_into_influxd`, the default `archive` release is used.)
    outbox = {"release": "archive" if influx is not None else "broker"}
    if max_bytes is not None:
        outbox["max_bytes"] = str(max_bytes)
    text += "outbox: {" + ", ".join(f"{k}: {v}" for k, v in outbox.items()) + "}\n"
    if influx is not None:
        text += f"influxdb: {{url: '{influx.url}', api: v1, database: {influx.database}}}\n"
    if trap_port is not None:
        text += (
            f"snmp_traps: {{listen_host: 127.0.0.1, listen_port: {trap_port},"
            f" communities: [{{env: {TRAP_COMMUNITY_ENV}}}]}}\n"
        )
    path = tmp / "site.yaml"
    path.write_text(text)
    return path, site_id


class Sub:
    """Collects every message under one site's topics (retained ones included)."""

    def __init__(self, broker: Mosquitto, site_id: str) -> None:
        self.msgs: list[tuple[str, dict[str, Any], bool]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(broker.username, broker.password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"roomguard/v1/{site_id}/#", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.msgs.append((m.topic, json.loads(m.payload), bool(m.retain)))

    def on(self, suffix: str) -> list[dict[str, Any]]:
        """Payloads of topics ending with `suffix`, in arrival order."""
        with self.lock:
            return [p for t, p, _ in self.msgs if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _until(cond: Callable[[], Any], limit_s: float = 20.0, what: str = "condition") -> Any:
    """Wait (yielding to the loop that serves the simulated devices) until `cond()` is truthy."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        value = cond()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def room() -> AsyncIterator[ModbusSimServer]:
    server = ModbusSimServer("127.0.0.1", 0)
    profile = ProfileRegistry.builtin().get("sht20-xy-md02")
    for unit in (1, 2):
        server.add_device(unit, profile)  # type: ignore[arg-type]
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch, mosquitto: Mosquitto) -> dict[str, str]:
    monkeypatch.setenv(PASSWORD_ENV, mosquitto.password)
    return {**os.environ, PASSWORD_ENV: mosquitto.password}


async def _start(site: SiteConfig, state: Path, cid: str = "c1") -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_collector(site, state, stop, collector_id=cid, metrics_interval_s=0.5, snapshot_interval_s=0.3)
    )
    return stop, task


def _seqs(sub: Sub, device: str) -> list[int]:
    return [p["seq"] for p in sub.on(f"/r1/{device}/readings")]


pytestmark = pytest.mark.integration


async def test_readings_seq_status_and_self_metrics(
    mosquitto: Mosquitto, room: ModbusSimServer, secret: dict[str, str], tmp_path: Path
) -> None:
    path, site_id = _site_yaml(tmp_path, mosquitto, room.port)
    site = load_site(path)
    sub = Sub(mosquitto, site_id)
    state = tmp_path / "state"
    try:
        stop, task = await _start(site, state)
        await _until(lambda: len(_seqs(sub, "th-1")) >= 5 and len(_seqs(sub, "th-2")) >= 5, what="readings")
        for dev in ("th-1", "th-2"):
            seqs = _seqs(sub, dev)
            assert seqs[:5] == [0, 1, 2, 3, 4], seqs
            msg = sub.on(f"/{site_id}/r1/{dev}/readings")[0]
            assert msg["device"]["device"] == dev
            assert msg["quality"] == "good"
        assert sub.on("/r1/th-1/status")[0]["state"] == "online"
        online = await _until(lambda: sub.on("/_collector/c1/status"), what="collector online")
        assert online[-1]["state"] == "online"

        # Self-metrics of the pseudo-device `collector-c1` (class system) in the site's first room.
        metrics = await _until(lambda: sub.on("/r1/collector-c1/readings"), what="self-metrics")
        assert metrics[0]["device"]["class"] == "system"
        names = {m["name"]: m["value"] for m in metrics[0]["metrics"]}
        assert {
            "outbox_depth",
            "outbox_bytes",
            "outbox_oldest_age_s",
            "outbox_dropped_total",
            "outbox_dropped_bytes",
            "outbox_dropped_age",
            "broker_connected",
            "published",
            "acked",
        } <= set(names)
        assert names["broker_connected"] is True
        assert names["outbox_dropped_total"] == 0

        # A silent device: its retained status goes offline with the failure as reason.
        room.set_silent(2, True)
        off = await _until(
            lambda: [p for p in sub.on("/r1/th-2/status") if p["state"] == "offline"], what="device offline"
        )
        assert off[0]["reason"]
        snap = json.loads((state / "collector.json").read_text())
        assert snap["devices"]["th-1"]["quality"] == "good"
        room.set_silent(2, False)
        await _until(lambda: sub.on("/r1/th-2/status")[-1]["state"] == "online", what="device online again")

        stop.set()
        await asyncio.wait_for(task, 15)
        last = await _until(
            lambda: (
                sub.on("/_collector/c1/status")[-1]["state"] == "offline"
                and sub.on("/_collector/c1/status")[-1]
            ),
            what="collector offline",
        )
        assert last["reason"] == "shutdown"
        before = max(_seqs(sub, "th-1"))

        # Restart: seq continues from where the previous run stopped.
        n = len(_seqs(sub, "th-1"))
        stop, task = await _start(site, state)
        await _until(lambda: len(_seqs(sub, "th-1")) >= n + 3, what="readings after restart")
        stop.set()
        await asyncio.wait_for(task, 15)
        seqs = _seqs(sub, "th-1")
        assert seqs[n] == before + 1, (before, seqs[n - 2 : n + 3])
        assert sorted(set(seqs)) == list(range(max(seqs) + 1))
    finally:
        sub.close()


async def test_sigkill_leaves_the_last_will_offline(
    mosquitto: Mosquitto, room: ModbusSimServer, secret: dict[str, str], tmp_path: Path
) -> None:
    path, site_id = _site_yaml(tmp_path, mosquitto, room.port)
    sub = Sub(mosquitto, site_id)
    proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; the loop keeps serving the devices
        [
            sys.executable,
            "-m",
            "roomguard",
            "collect",
            str(path),
            "--state-dir",
            str(tmp_path / "s"),
            "--collector-id",
            "k1",
        ],
        cwd=ROOT,
        env=secret,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await _until(lambda: sub.on("/_collector/k1/status"), 30, "collector online")
        await _until(lambda: len(_seqs(sub, "th-1")) >= 2, what="readings")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        will = await _until(
            lambda: (
                sub.on("/_collector/k1/status")[-1]["state"] == "offline"
                and sub.on("/_collector/k1/status")[-1]
            ),
            what="last will",
        )
        assert will["reason"] == WILL_REASON
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sub.close()


async def test_outbox_bound_drop_is_counted_logged_published_and_shown(
    mosquitto_private: Mosquitto,
    room: ModbusSimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = mosquitto_private
    monkeypatch.setenv(PASSWORD_ENV, broker.password)
    path, site_id = _site_yaml(tmp_path, broker, room.port, max_bytes=6000)
    site = load_site(path)
    state = tmp_path / "state"
    caplog.set_level(logging.WARNING, logger="bus.outbox")
    stop, task = await _start(site, state)

    def snap() -> dict[str, Any]:
        try:
            return dict(json.loads((state / "collector.json").read_text()))
        except (OSError, ValueError):
            return {}

    try:
        await _until(lambda: snap().get("broker", {}).get("connected"), what="connected")
        broker.stop()
        dropped = await _until(lambda: snap().get("outbox", {}).get("dropped_total", 0), what="a drop")
        assert dropped > 0
        assert snap()["outbox"]["last_drop"]["reason"] == "bytes"
        assert any("dropped" in r.getMessage() for r in caplog.records)

        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "roomguard", "status", str(path), "--state-dir", str(state)],
            cwd=ROOT,
            env={**os.environ, PASSWORD_ENV: broker.password},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "DISCONNECTED" in out.stdout, out.stdout
        assert "DATA DROPPED" in out.stdout, out.stdout
        assert "th-1" in out.stdout
        assert "running 執行中" in out.stdout
        assert broker.password not in out.stdout

        broker.start()
        sub = Sub(broker, site_id)
        try:

            def dropped_metric() -> bool:
                for p in sub.on("/r1/collector-c1/readings"):
                    values = {m["name"]: m["value"] for m in p["metrics"]}
                    if values["outbox_dropped_total"] > 0 and values["outbox_dropped_bytes"] > 0:
                        return True
                return False

            await _until(dropped_metric, 30, "self-metrics with the drop")
        finally:
            sub.close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_refused_traps_are_counted_in_status_and_self_metrics(
    mosquitto: Mosquitto,
    room: ModbusSimServer,
    secret: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A card sending with the wrong community is findable: `roomguard status` names its address and
    what to check, and the self-metrics count it (issue: a misconfigured card must be findable)."""
    monkeypatch.setenv(TRAP_COMMUNITY_ENV, "traps-Zq9")
    path, site_id = _site_yaml(tmp_path, mosquitto, room.port, trap_port=free_udp_port())
    site = load_site(path)
    sub = Sub(mosquitto, site_id)
    state = tmp_path / "state"
    try:
        stop, task = await _start(site, state)
        snap_file = state / "collector.json"
        await _until(
            lambda: snap_file.exists() and "traps" in json.loads(snap_file.read_text()), what="listener"
        )
        addr = json.loads(snap_file.read_text())["traps"]["listen"]
        for _ in range(3):
            await snmptrap("-v2c", "-c", "guess", addr, "", ON_BATTERY)
        await snmptrap("-v2c", "-c", "traps-Zq9", addr, "", ON_BATTERY)

        def counted() -> dict[str, Any] | None:
            traps = json.loads(snap_file.read_text())["traps"]
            return traps if traps["refused_total"] == 3 and traps["received"] == 1 else None

        traps = await _until(counted, what="refusals in the status snapshot")
        assert traps["refused"] == [
            {
                "source": "127.0.0.1",
                "kind": "unknown_community",
                "count": 3,
                "hint": "community not in snmp_traps.communities",
            }
        ]
        report = format_status(state, site_id)
        assert f"traps SNMP 陷阱: listening 監聽 {addr}, received 已接收 1, refused 已拒絕 3" in report
        assert (
            "refused from 拒收來源 127.0.0.1: 3 unknown_community (community not in snmp_traps.communities)"
            in report
        )
        assert "traps-Zq9" not in report
        assert "guess" not in report
        metrics = await _until(
            lambda: [
                m
                for p in sub.on("/r1/collector-c1/readings")
                for m in p["metrics"]
                if m["name"] == "traps_refused" and m["value"] == 3
            ],
            what="traps_refused self-metric",
        )
        assert metrics
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        sub.close()


def test_status_says_not_running_for_a_stale_or_missing_snapshot(tmp_path: Path) -> None:
    assert "collector 收集器: not running 未執行" in format_status(tmp_path, "s1")
    now = datetime.now(UTC)
    old = (now - timedelta(seconds=60)).isoformat()
    (tmp_path / "collector.json").write_text(
        json.dumps(
            {
                "written": old,
                "running": True,
                "collector_id": "c9",
                "devices": {
                    "ups-1": {
                        "room": "mr1",
                        "last_poll": old,
                        "quality": "comm_error",
                        "error": "timeout",
                        "failures": 4,
                    }
                },
                "outbox": {"depth": 3, "bytes": 900, "dropped_total": 0, "dropped_by_reason": {}},
                "broker": {"connected": True, "host": "127.0.0.1", "port": 1883},
            }
        )
    )
    (tmp_path / "ingest.json").write_text(
        json.dumps(
            {
                "written": now.isoformat(),
                "broker_connected": True,
                "db_state": "down",
                "db_error": "connection refused",
                "written_points": 12,
            }
        )
    )
    text = format_status(tmp_path, "s1", now)
    assert "not running 未執行 (last snapshot 60 s ago)" in text
    assert "comm_error" in text
    assert "timeout" in text
    assert "database 資料庫: DOWN" in text
    assert "connection refused" in text
    assert "written_points 12" in text


async def test_run_writes_readings_into_influxd(
    mosquitto: Mosquitto, influxd: Influxd, room: ModbusSimServer, secret: dict[str, str], tmp_path: Path
) -> None:
    path, site_id = _site_yaml(tmp_path, mosquitto, room.port, influx=influxd)
    proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; the loop keeps serving the devices
        [
            sys.executable,
            "-m",
            "roomguard",
            "run",
            str(path),
            "--state-dir",
            str(tmp_path / "s"),
            "--seconds",
            "60",
            "--collector-id",
            "r1",
        ],
        cwd=ROOT,
        env=secret,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def rows(measurement: str) -> list[dict[str, Any]]:
        return influxd.rows(f"SELECT * FROM \"{measurement}\" WHERE site = '{site_id}'")

    try:
        await _until(lambda: {r["device"] for r in rows("env")} >= {"th-1", "th-2"}, 40, "env rows")
        await _until(lambda: rows("system"), 40, "self-metrics rows")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
