"""Acceptance: several rooms on one central view, through the shipped mosquitto bridge (docs/multi-site.md).

Two real mosquitto brokers on loopback: the edge broker runs the bridge section `roomguard broker-bridge`
writes (TLS to the central broker's TLS listener, its own account there), the central broker runs the ACL
`roomguard broker-acl CENTRAL.yaml --bridged EDGE.yaml` writes. The simulated example room is polled by
the real `roomguard collect` at the edge, which runs no ingest (mode `confirmations: central`); the real
`roomguard ingest` reads the central broker and writes a real InfluxDB. The bridge goes down (the central
broker stops) while polling goes on; after it is back every device's sequence numbers 0..last are all in
the central database: zero holes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from bus.broker_bridge import broker_bridge, central_acl
from devices.yamlload import read_yaml
from siteconfig.config import load_site
from testkit.example_site import ROOT, SECRETS, example_site
from testkit.services import Influxd, Mosquitto
from tests.pipeline_support import log_tails, simulator_up, spawn, stop_process, wait_for

pytestmark = pytest.mark.integration
SITE = "tpe-hq"
BRIDGE_USER = f"roomguard-bridge-{SITE}"
BRIDGE_PASSWORD = "test-bridge-pass"  # a test-only credential of the bridge account
STATE_TOPIC = f"roomguard/v1/{SITE}/_bridge/roomguard-{SITE}/state"
OUTAGE_S = 25  # two polls of the example's slowest (10 s) devices, twelve of the generator's
NOT_AUTHORIZED = 0x87


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Mosquitto]:
    """The central broker: a TLS listener for the bridges, the ACL written by each test, not started."""
    broker = Mosquitto(tmp_path / "central", tls=True, require_certificate=False, acl="")
    subprocess.run(
        ["mosquitto_passwd", "-b", str(broker.workdir / "passwd"), BRIDGE_USER, BRIDGE_PASSWORD],
        check=True,
        capture_output=True,
    )
    try:
        yield broker
    finally:
        broker.stop()


def _roomguard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roomguard", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env() -> dict[str, str]:
    return {
        **os.environ,
        **SECRETS,
        "ROOMGUARD_MQTT_PASSWORD": Mosquitto.password,
        "ROOMGUARD_MQTT_BRIDGE_PASSWORD": BRIDGE_PASSWORD,
    }


def _edge_site(tmp: Path, edge_port: int, central: Mosquitto) -> tuple[Path, int]:
    assert central.pki is not None
    assert central.tls_port is not None
    mqtt_section = (
        f"mqtt:\n  host: 127.0.0.1\n  port: {edge_port}\n  username: {Mosquitto.username}\n"
        "  password: {env: ROOMGUARD_MQTT_PASSWORD}\n"
        f"  bridge:\n    address: 127.0.0.1\n    port: {central.tls_port}\n"
        "    password: {env: ROOMGUARD_MQTT_BRIDGE_PASSWORD}\n"
        f"    tls: {{ca_file: {central.pki.ca_cert}}}\n"
    )
    return example_site(tmp / "edge.yaml", mqtt=mqtt_section)


def _central_site(tmp: Path, central: Mosquitto, db: Influxd) -> Path:
    """The central ingest's site file: its own id, every site's readings (`ingest.all_sites`)."""
    path, _ = example_site(
        tmp / "central.yaml",
        mqtt=(
            f"mqtt: {{host: 127.0.0.1, port: {central.port}, username: {Mosquitto.username},"
            " password: {env: ROOMGUARD_MQTT_PASSWORD}}\n"
        ),
        influxdb=f"influxdb: {{url: 'http://127.0.0.1:{db.port}', api: v1, database: {db.database}}}\n",
    )
    text = path.read_text()
    text = re.sub(r"(?m)^site:\n  id: tpe-hq$", "site:\n  id: central", text, count=1)
    text, n = re.subn(r"(?m)^ingest:\n  known_devices_only: true$", "ingest:\n  all_sites: true", text)
    assert n == 1, "the example site's ingest section changed: adapt this test"
    path.write_text(text)
    return path


def _counts(db: Influxd) -> dict[str, int]:
    """Points per device of the site in the central database (one line per readings message)."""
    rows = db.rows(f"SELECT count(\"quality\") FROM /.*/ WHERE site = '{SITE}' GROUP BY device")
    out: dict[str, int] = {}
    for row in rows:  # one row per (measurement, device); a device has one measurement
        out[row["device"]] = out.get(row["device"], 0) + int(row["count"])
    return out


def _seq_state(state: Path) -> dict[str, tuple[int, list[Any], int]]:
    """Ingest's per-device sequence state (ingest.db): device -> (last seq, open holes, given up)."""
    with contextlib.closing(sqlite3.connect(f"file:{state / 'ingest.db'}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT site, device, last, holes, given_up FROM devices").fetchall()
    return {
        device: (last, json.loads(holes), given_up)
        for site, device, last, holes, given_up in rows
        if site == SITE
    }


def _snapshot(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _retained(broker: Mosquitto, topic: str, user: str, password: str) -> bytes | None:
    """The retained message on `topic` (None if there is none), read by a throw-away client."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(user, password)
    client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda _c, _u, _m, _rc, _p: threading.Timer(1.0, done.set).start()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(bytes(msg.payload))
        done.set()

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        done.wait(10)
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0] if got else None


async def test_readings_cross_the_bridge_and_an_outage_leaves_zero_holes(
    central: Mosquitto, influxd_private: Influxd, tmp_path: Path
) -> None:
    env = _env()
    confd = tmp_path / "edge-conf.d"
    confd.mkdir()
    # The edge broker includes conf.d as Debian's /etc/mosquitto/mosquitto.conf does.
    edge = Mosquitto(tmp_path / "edge", autosave_interval_s=1, acl="", extra_config=[f"include_dir {confd}"])
    edge_site, http_port = _edge_site(tmp_path, edge.port, central)
    central_site = _central_site(tmp_path, central, influxd_private)

    # The shipped configuration, written by the shipped commands.
    bridge_conf = confd / "roomguard-bridge.conf"
    out = _roomguard("broker-bridge", str(edge_site), "--output", str(bridge_conf), env=env)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(bridge_conf.stat().st_mode) == 0o600
    assert f"remote_password {BRIDGE_PASSWORD}" in bridge_conf.read_text()
    acl = _roomguard("broker-acl", str(central_site), "--bridged", str(edge_site), env=env)
    assert acl.returncode == 0, acl.stderr
    assert f"user {BRIDGE_USER}" in acl.stdout
    central.acl_path.write_text(acl.stdout)
    # The edge broker keeps its site's own ACL: mosquitto does not apply it to its own bridge, so the
    # confirmations the bridge brings in reach the collector.
    edge_acl = _roomguard("broker-acl", str(edge_site), env=env)
    assert edge_acl.returncode == 0, edge_acl.stderr
    edge.acl_path.write_text(edge_acl.stdout)

    central.start()
    edge_state, central_state = tmp_path / "edge-state", tmp_path / "central-state"
    logs = [tmp_path / n for n in ("simulate.log", "collect.log", "ingest.log")]
    devices = {str(d["id"]) for d in read_yaml(edge_site)["devices"]}

    def diagnosis() -> str:
        return (
            f"in the database: {_counts(influxd_private)}"
            f"\ncollector: {_snapshot(edge_state / 'collector.json')}"
            f"\ningest: {_snapshot(central_state / 'ingest.json')}\n{log_tails(logs)}"
            f"\n--- edge broker\n{edge.log_tail(3000)}\n--- central broker\n{central.log_tail(3000)}"
        )

    edge.start()
    try:
        simulate = ["simulate", str(edge_site), "--http-port", str(http_port)]
        with spawn(simulate, env, logs[0]) as sim:
            await simulator_up(f"http://127.0.0.1:{http_port}", sim, logs[0])
            ingest_argv = ["ingest", str(central_site), "--state-dir", str(central_state)]
            with spawn(ingest_argv, env, logs[2]) as ingest:
                with spawn(
                    ["collect", str(edge_site), "--state-dir", str(edge_state)], env, logs[1]
                ) as collect:
                    await wait_for(
                        lambda: devices <= set(_counts(influxd_private)),
                        "every device of the edge site in the central database",
                        diagnosis,
                        120,
                    )
                    assert _retained(edge, STATE_TOPIC, Mosquitto.username, Mosquitto.password) == b"1"

                    # The bridge goes down (the central broker stops) while the edge keeps polling: the
                    # collector's outbox holds every reading, since only the central ingest confirms.
                    central.stop()
                    await wait_for(
                        lambda: not _snapshot(central_state / "ingest.json").get("broker_connected", True),
                        "ingest noticed the central broker is gone",
                        diagnosis,
                    )
                    held_before = _snapshot(edge_state / "collector.json")["outbox"]["depth"]
                    before = _counts(influxd_private)
                    await asyncio.sleep(OUTAGE_S)
                    held = _snapshot(edge_state / "collector.json")["outbox"]["depth"]
                    assert held > held_before, f"the outbox did not hold the outage's readings: {diagnosis()}"
                    central.start()

                    # Everything polled during the outage arrives, and polling goes on being delivered.
                    await wait_for(
                        lambda: all(
                            _counts(influxd_private).get(d, 0) >= before.get(d, 0) + 2 for d in devices
                        ),
                        "the outage's readings of every device in the central database",
                        diagnosis,
                        120,
                    )
                    # The central ingest's confirmations came back over the bridge and released them.
                    await wait_for(
                        lambda: _snapshot(edge_state / "collector.json")["outbox"]["depth"] < held,
                        "the outbox released on the central confirmations",
                        diagnosis,
                        120,
                    )
                    # The bridge's notification on the edge broker: retained "1" once the link is up again.
                    await wait_for(
                        lambda: _retained(edge, STATE_TOPIC, Mosquitto.username, Mosquitto.password) == b"1",
                        "the bridge state 1 on the edge broker",
                        diagnosis,
                    )
                    stop_process(collect)
                    assert collect.returncode == 0, log_tails(logs[1:2])
                # What the collector published before it stopped is stored: ingest's sequence numbers
                # and the database agree for every device (readings left in the outbox go next start).
                await wait_for(
                    lambda: (
                        _snapshot(central_state / "ingest.json").get("backlog") == 0
                        and _counts(influxd_private)
                        == {d: last + 1 for d, (last, _h, _g) in _seq_state(central_state).items()}
                    ),
                    "the central database holds seq 0..last of every device",
                    lambda: f"seq state: {_seq_state(central_state)}\n{diagnosis()}",
                    120,
                )
                stop_process(ingest)
                assert ingest.returncode == 0, log_tails(logs[2:])

    finally:
        edge.stop()
    seq = _seq_state(central_state)
    assert devices <= set(seq), sorted(devices - set(seq))
    for device, (_last, holes, given_up) in seq.items():
        assert not holes, f"{device}: holes {holes}"
        assert not given_up, f"{device}: {given_up} given up"
    counts = _counts(influxd_private)
    # seq starts at 0 in a new state directory, one point per message: last + 1 points means no hole.
    assert counts == {d: last + 1 for d, (last, _h, _g) in seq.items()}, (counts, seq)
    report = _snapshot(central_state / "ingest.json")
    for counter in ("missing", "gaps", "dead_lettered", "restarts"):
        assert report[counter] == 0, (counter, report)
    assert not (central_state / "dead-letter.jsonl").exists()


def test_the_central_acl_keeps_a_site_s_bridge_account_to_its_own_prefix(
    central: Mosquitto, tmp_path: Path
) -> None:
    edge_site, _ = _edge_site(tmp_path, 1883, central)
    central.acl_path.write_text(central_acl([load_site(edge_site)]))
    central.start()
    try:
        assert central.tls_port is not None
        assert central.pki is not None
        results: dict[str, int] = {}
        done = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, "acl-probe", protocol=MQTTProtocolVersion.MQTTv5)
        client.username_pw_set(BRIDGE_USER, BRIDGE_PASSWORD)
        client.tls_set(ca_certs=str(central.pki.ca_cert), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        topics = {
            "own": f"roomguard/v1/{SITE}/mr1/th-a01/readings",
            "other site": "roomguard/v1/tpe-dr/mr1/th-a01/readings",
            "other prefix": f"other/v1/{SITE}/mr1/th-a01/readings",
        }
        mids: dict[int, str] = {}

        def on_publish(_c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
            results[mids[mid]] = rc.value
            if len(results) == len(topics):
                done.set()

        client.on_publish = on_publish
        client.connect(central.host, central.tls_port)
        client.loop_start()
        try:
            for name, topic in topics.items():
                mids[client.publish(topic, b"{}", qos=1).mid] = name
            assert done.wait(10), results
        finally:
            client.loop_stop()
            client.disconnect()
    finally:
        central.stop()
    assert results["own"] in (0, 0x10), results  # success, or "no matching subscribers"
    assert results["other site"] == NOT_AUTHORIZED, results
    assert results["other prefix"] == NOT_AUTHORIZED, results


def test_the_bridge_section_names_each_mode_and_never_prints_the_password(tmp_path: Path) -> None:
    central = Mosquitto(tmp_path / "central", tls=True, require_certificate=False)
    edge_site, _ = _edge_site(tmp_path, 1883, central)
    site = load_site(edge_site)
    text = broker_bridge(site)
    assert "remote_password" not in [ln.split(" ")[0] for ln in text.splitlines()]
    assert f"topic roomguard/v1/{SITE}/_ingest/+/confirmed in 1" in text
    assert "cleansession false" in text
    assert central.pki is not None
    assert f"bridge_cafile {central.pki.ca_cert}" in text
    # Confirmations never go out: another site's collectors must not hear them, nor may one come back.
    assert not [
        ln for ln in text.splitlines() if ln.startswith("topic") and "_ingest" in ln and " out " in ln
    ]
    local = edge_site.read_text().replace("    tls:", "    confirmations: local\n    tls:")
    edge_site.write_text(local)
    local_text = broker_bridge(load_site(edge_site))
    assert not [ln for ln in local_text.splitlines() if ln.startswith("topic") and "_ingest" in ln]
    assert f"topic roomguard/v1/{SITE}/+/+/readings out 1" in local_text
    # The printed section holds no secret; the command says where the password goes.
    out = _roomguard("broker-bridge", str(edge_site), env=_env())
    assert out.returncode == 0, out.stderr
    assert BRIDGE_PASSWORD not in out.stdout
    assert "--output" in out.stdout
    with pytest.raises(ValueError, match="whitespace"):
        broker_bridge(site, "two words")


def test_a_bad_bridge_section_is_named_with_its_field(tmp_path: Path) -> None:
    central = Mosquitto(tmp_path / "central", tls=True, require_certificate=False)
    edge_site, _ = _edge_site(tmp_path, 1883, central)
    edge_site.write_text(edge_site.read_text().replace("    tls:", "    confirmations: both\n    tls:"))
    out = _roomguard("check-config", "--no-secrets", str(edge_site), env=_env())
    assert out.returncode != 0
    for expected in ("edge.yaml:", "mqtt.bridge.confirmations", "valid choices: central, local"):
        assert expected in out.stderr, out.stderr
    text = edge_site.read_text().replace("    confirmations: both\n", "")
    edge_site.write_text(text.replace("password: {env: ROOMGUARD_MQTT_BRIDGE_PASSWORD}", "password: hunter2"))
    out = _roomguard("check-config", "--no-secrets", str(edge_site), env=_env())
    assert out.returncode != 0
    assert "hunter2" not in out.stderr + out.stdout
    # Without a bridge section the command says what is missing.
    plain, _ = example_site(tmp_path / "plain.yaml")
    out = _roomguard("broker-bridge", str(plain), env=_env())
    assert out.returncode == 2
    assert "mqtt.bridge" in out.stderr
