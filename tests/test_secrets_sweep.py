"""No secret is written anywhere: a site whose secrets are unique marker strings is run through timeouts,
wrong SNMP credentials and a broker outage, then every log line, state file, MQTT message and database
row is searched for the markers.

Before: a v2c timeout's error text held `SnmpV2c(community='…')`, and it reached the log, `roomguard
status`, the status file, the MQTT payload and retained status topic, and InfluxDB's `error` field.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from testkit.services import Influxd, Mosquitto, serve
from tests.snmp_fixtures import Snmpd, free_udp_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
TAG = uuid.uuid4().hex[:8]
MARKERS = {
    "ROOMGUARD_T_COMMUNITY_DEAD": f"mk{TAG}dead-community",
    "ROOMGUARD_T_COMMUNITY_WRONG": f"mk{TAG}wrong-community",
    "ROOMGUARD_T_V3_AUTH": f"mk{TAG}v3-auth-key",
    "ROOMGUARD_T_V3_PRIV": f"mk{TAG}v3-priv-key",
    "ROOMGUARD_T_MQTT": f"mk{TAG}mqtt-password",
    "ROOMGUARD_T_INFLUX": f"mk{TAG}influx-password",
    "ROOMGUARD_T_TRAP": f"mk{TAG}trap-community",
}


class MarkedMosquitto(Mosquitto):
    """mosquitto whose roomguard account has a marker password."""

    password = MARKERS["ROOMGUARD_T_MQTT"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    yield from serve(MarkedMosquitto(tmp_path / "mosquitto"))


@pytest.fixture
def snmpd_v3(tmp_path: Path) -> Iterator[int]:
    """net-snmp snmpd with a v2c community and a v3 user whose keys are NOT the site's markers."""
    agent = Snmpd(
        tmp_path / "snmpd",
        [
            "rocommunity right-ro 127.0.0.1",
            "createUser roomguard SHA-256 right-auth-pass AES right-priv-pass",
            "rouser roomguard priv",
        ],
        ready=["-v2c", "-c", "right-ro"],
    )
    yield agent.port
    agent.close()


def _site(tmp: Path, broker: Mosquitto, db: Influxd, snmp_port: int) -> Path:
    dead = free_udp_port()
    path = tmp / "site.yaml"
    path.write_text(f"""site: {{id: sweep, name: sweep}}
rooms: [{{id: r1, name: room}}]
defaults: {{poll_interval_s: 1, timeout_s: 0.5, retries: 0, backoff_max_s: 2}}
devices:
  - {{id: ups-dead, name: nobody listens, room: r1, profile: rfc1628-ups,
     snmp: {{host: 127.0.0.1, port: {dead}, community: {{env: ROOMGUARD_T_COMMUNITY_DEAD}}}}}}
  - {{id: ups-wrong, name: wrong community, room: r1, profile: rfc1628-ups,
     snmp: {{host: 127.0.0.1, port: {snmp_port}, community: {{env: ROOMGUARD_T_COMMUNITY_WRONG}}}}}}
  - id: crac-v3
    name: wrong v3 keys
    room: r1
    profile: liebert-gp-crac
    snmp:
      host: 127.0.0.1
      port: {snmp_port}
      version: v3
      v3: {{user: roomguard, auth_protocol: sha256, auth_key: {{env: ROOMGUARD_T_V3_AUTH}},
           priv_protocol: aes128, priv_key: {{env: ROOMGUARD_T_V3_PRIV}}}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username},
       password: {{env: ROOMGUARD_T_MQTT}}, reconnect_max_s: 1}}
influxdb: {{url: '{db.url}', api: v1, database: {db.database}, username: roomguard,
           password: {{env: ROOMGUARD_T_INFLUX}}}}
snmp_traps:
  listen_host: 127.0.0.1
  listen_port: {free_udp_port()}
  communities: [{{env: ROOMGUARD_T_TRAP}}]
""")
    return path


class Witness:
    """Records every message on the broker (retained ones included), across reconnects."""

    def __init__(self, broker: Mosquitto) -> None:
        self.payloads: list[bytes] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"witness-{TAG}", clean_session=False
        )
        self.client.username_pw_set(broker.username, broker.password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, c: object, u: object, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.payloads.append(m.topic.encode() + b" " + bytes(m.payload))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_no_secret_reaches_logs_state_files_mqtt_or_the_database(
    broker: Mosquitto, influxd_private: Influxd, snmpd_v3: int, tmp_path: Path
) -> None:
    site = _site(tmp_path, broker, influxd_private, snmpd_v3)
    state = tmp_path / "state"
    log = tmp_path / "run.log"
    env = {**os.environ, **MARKERS}
    witness = Witness(broker)
    with log.open("wb") as out:
        cmd = [sys.executable, "-m", "roomguard", "run", str(site), "--state-dir", str(state), "-v"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(8)  # every device fails its way: timeout, timeout, auth error
        broker.stop()
        time.sleep(4)
        broker.start()
        time.sleep(8)
        status = subprocess.run(
            [sys.executable, "-m", "roomguard", "status", str(site), "--state-dir", str(state)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
        )
        check = subprocess.run(
            [sys.executable, "-m", "roomguard", "check-config", str(site)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
        )
    finally:
        proc.terminate()
        proc.wait(30)
        witness.close()
    rows = influxd_private.query("SELECT * FROM /.*/", database=influxd_private.database)
    evidence = {
        "run.log": log.read_bytes(),
        "status": status.stdout + status.stderr,
        "check-config": check.stdout + check.stderr,
        "mqtt": b"\n".join(witness.payloads),
        "influxdb": json.dumps(rows).encode(),
        **{f"state/{p.name}": p.read_bytes() for p in state.iterdir() if p.is_file()},
    }
    # The run really went through the failures the markers could leak from.
    text = evidence["run.log"].decode(errors="replace")
    assert "ups-dead unreachable: DeviceTimeout" in text, text[-3000:]
    assert "crac-v3 unreachable: AuthFailure" in text, text[-3000:]
    assert "connected again" in text
    assert b"comm_error" in evidence["influxdb"]
    assert len(witness.payloads) > 10
    for where, data in evidence.items():
        for name, secret in MARKERS.items():
            assert secret.encode() not in data, f"{name} ({secret}) leaked into {where}"
