"""The shipped broker configuration, run as shipped: per-role ACL, TLS listener, message size limit.

mosquitto is started from deploy/mosquitto/roomguard.conf itself (only paths and ports rewritten) with the
ACL `roomguard broker-acl` generates for a site. Before, any authenticated client could publish readings for
any device of any site, a 10 MB reading reached ingest, and the shipped config had no TLS listener.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bus.broker_acl import broker_acl
from collector.collect import run_collector
from devices.modbus_profile import ModbusProfile
from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer
from ingest.run import run_ingest
from siteconfig.config import SiteConfig, load_site
from testkit.services import Influxd, Mosquitto, TestPki, free_tcp_port, serve

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "mosquitto" / "roomguard.conf"
ACCOUNTS = {
    "roomguard-collector": "pw-collector",
    "roomguard-ingest": "pw-ingest",
    "roomguard-api": "pw-api",
    "watcher": "pw-watcher",
    "stranger": "pw-stranger",
}
NOT_AUTHORIZED = 0x87


class ShippedMosquitto(Mosquitto):
    """mosquitto running deploy/mosquitto/roomguard.conf with test paths, accounts and the site's ACL."""

    def __init__(self, workdir: Path, acl: str) -> None:
        super().__init__(workdir)  # writes a plain config we then replace by the shipped one
        self.pki = TestPki(workdir / "pki")
        self.tls_port = free_tcp_port()
        passwd = workdir / "passwd"
        passwd.unlink(missing_ok=True)
        for i, (user, password) in enumerate(ACCOUNTS.items()):
            create = ["-c"] if i == 0 else []
            subprocess.run(
                ["mosquitto_passwd", *create, "-b", str(passwd), user, password],
                check=True,
                capture_output=True,
            )
        self.acl_path.write_text(acl)
        text = SHIPPED.read_text()
        text = text.replace("listener 1883 127.0.0.1", f"listener {self.port} 127.0.0.1")
        text = text.replace("listener 8883", f"listener {self.tls_port} 127.0.0.1")
        for key, value in (
            ("certfile", self.pki.server_cert),
            ("keyfile", self.pki.server_key),
            ("cafile", self.pki.ca_cert),
            ("password_file", passwd),
            ("acl_file", self.acl_path),
            ("persistence_location", f"{self.data_dir}/"),
            ("log_dest", "stdout"),
        ):
            text = re.sub(rf"(?m)^{key} .*$", f"{key} {value}", text)
        if os.geteuid() == 0:
            text += "user root\n"  # mosquitto.conf(5) `user`: stay root to read our 0600 files
        self.config_path.write_text(text)


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    path = tmp_path / "site.yaml"
    path.write_text("""site: {id: acl, name: ACL}
rooms: [{id: r1, name: R}]
mqtt:
  host: 127.0.0.1
  username: watcher
  password: {env: T_PW_WATCHER}
  roles:
    collector: {username: roomguard-collector, password: {env: T_PW_COLLECTOR}}
    ingest: {username: roomguard-ingest, password: {env: T_PW_INGEST}}
    api: {username: roomguard-api, password: {env: T_PW_API}}
""")
    return load_site(path)


@pytest.fixture
def broker(tmp_path: Path, site: SiteConfig) -> Iterator[ShippedMosquitto]:
    yield from serve(ShippedMosquitto(tmp_path / "mosquitto", broker_acl(site)))


class Client:
    """A paho MQTT 5 client that records PUBACK reason codes and received messages."""

    def __init__(
        self, broker: ShippedMosquitto, user: str, *, tls: bool = False, subscribe: str | None = None
    ) -> None:
        self.acks: dict[int, int] = {}
        self.got: list[tuple[str, int]] = []
        self.connect_rc: Any = None
        self.ready = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"t-{user}-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(user, ACCOUNTS.get(user, "wrong"))
        port = broker.port
        if tls:
            assert broker.pki is not None
            assert broker.tls_port is not None
            self.client.tls_set(ca_certs=str(broker.pki.ca_cert), cert_reqs=ssl.CERT_REQUIRED)
            port = broker.tls_port
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc.value)
        self.client.on_message = lambda c, u, m: self.got.append((m.topic, len(m.payload)))
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.subscribe = subscribe
        self.client.connect(broker.host, port)
        self.client.loop_start()

    def _on_connect(self, c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        self.connect_rc = rc
        if rc.is_failure:
            self.ready.set()
        elif self.subscribe:
            c.subscribe(self.subscribe, qos=1)
        else:
            self.ready.set()

    def publish(self, topic: str, payload: bytes = b"{}") -> int:
        """PUBACK reason code of a QoS 1 publish (0 = accepted)."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        return self.acks[info.mid]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_each_role_may_do_only_its_job_and_big_messages_never_reach_a_subscriber(
    broker: ShippedMosquitto,
) -> None:
    watcher = Client(broker, "watcher", subscribe="roomguard/v1/acl/#")
    api = Client(broker, "roomguard-api", subscribe="roomguard/v1/acl/#")  # the web API: read-only
    collector = Client(broker, "roomguard-collector")
    ingest = Client(broker, "roomguard-ingest")
    stranger = Client(broker, "stranger")
    intruder = Client(broker, "nobody-at-all")
    try:
        for c in (watcher, api, collector, ingest, stranger, intruder):
            assert c.ready.wait(10)
        assert intruder.connect_rc.is_failure  # not in the password file
        own = "roomguard/v1/acl/r1/th-1/readings"
        assert collector.publish(own) == 0
        assert collector.publish("roomguard/v1/other-site/r1/th-1/readings") == NOT_AUTHORIZED
        assert collector.publish("roomguard/v1/acl/r1/th-1/status") == 0
        assert ingest.publish(own) == NOT_AUTHORIZED  # ingest cannot forge readings
        assert ingest.publish("roomguard/v1/acl/_ingest/i0/confirmed") == 0
        assert stranger.publish(own) == NOT_AUTHORIZED  # an account without ACL lines can do nothing
        assert watcher.publish(own) == NOT_AUTHORIZED  # read-only
        assert api.publish(own) == NOT_AUTHORIZED
        assert api.publish("roomguard/v1/acl/alerts/a1") == NOT_AUTHORIZED
        # mosquitto.conf(5) message_size_limit: mosquitto 2.0.11 drops it and disconnects the sender.
        big = Client(broker, "roomguard-collector")
        try:
            assert big.ready.wait(10)
            info = big.client.publish(own, b"x" * 300_000, qos=1)
            threading.Event().wait(3)
            assert not info.is_published()
        finally:
            big.close()
        assert collector.publish(own, b"y" * 100_000) == 0
        tls = Client(broker, "roomguard-collector", tls=True)
        try:
            assert tls.ready.wait(10)
            assert not tls.connect_rc.is_failure
            assert tls.publish(own, b"over tls") == 0
        finally:
            tls.close()
        for _ in range(50):  # the watcher's thread receives them
            if len(watcher.got) >= 5 and len(api.got) >= 4:  # the API: not the confirmation
                break
            threading.Event().wait(0.1)
        topics = [t for t, _ in watcher.got]
        sizes = [n for _, n in watcher.got]
        assert topics.count(own) == 3, watcher.got  # 2 bytes, 100 KB, and the TLS one
        assert "roomguard/v1/acl/r1/th-1/status" in topics
        assert "roomguard/v1/acl/_ingest/i0/confirmed" in topics
        assert max(sizes) == 100_000  # the 300 KB one never reached a subscriber
        heard = [t for t, _ in api.got]
        assert heard.count(own) == 3, api.got
        assert "roomguard/v1/acl/r1/th-1/status" in heard
        assert "roomguard/v1/acl/_ingest/i0/confirmed" not in heard  # not the API's business
    finally:
        for c in (watcher, api, collector, ingest, stranger, intruder):
            c.close()


@pytest.fixture
async def sensor() -> AsyncIterator[int]:
    server = ModbusSimServer("127.0.0.1", 0)
    profile = ProfileRegistry.builtin().get("sht20-xy-md02")
    assert isinstance(profile, ModbusProfile)
    server.add_device(1, profile)
    await server.start()
    yield server.port
    await server.stop()


async def test_collector_and_ingest_work_through_the_acl_with_their_own_accounts(
    broker: ShippedMosquitto, influxd: Influxd, sensor: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readings flow, and ingest's confirmations reach the collector (its outbox empties)."""
    for env, user in (("T_PW_COLLECTOR", "roomguard-collector"), ("T_PW_INGEST", "roomguard-ingest")):
        monkeypatch.setenv(env, ACCOUNTS[user])
    influxd.create_database("acl")
    path = tmp_path / "site.yaml"
    path.write_text(f"""site: {{id: acl, name: ACL}}
rooms: [{{id: r1, name: R}}]
defaults: {{poll_interval_s: 0.5}}
devices:
  - {{id: th-1, name: T, room: r1, profile: sht20-xy-md02, settings: {{resolution: x10}},
     modbus: {{host: 127.0.0.1, port: {sensor}}}}}
mqtt:
  host: 127.0.0.1
  port: {broker.port}
  roles:
    collector: {{username: roomguard-collector, password: {{env: T_PW_COLLECTOR}}}}
    ingest: {{username: roomguard-ingest, password: {{env: T_PW_INGEST}}}}
influxdb: {{url: '{influxd.url}', api: v1, database: acl}}
ingest: {{known_devices_only: true}}
""")
    site = load_site(path)
    state = tmp_path / "state"
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_collector(site, state, stop, collector_id="c1", snapshot_interval_s=0.3)),
        asyncio.create_task(run_ingest(site, state, stop)),
    ]
    try:
        async with asyncio.timeout(30):
            while len(influxd.rows("SELECT temp_c FROM env", "acl")) < 5:  # noqa: ASYNC110 - a database
                await asyncio.sleep(0.3)
        await asyncio.sleep(3)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    snap = json.loads((state / "collector.json").read_text())
    assert snap["broker"]["refused"] == 0
    assert snap["broker"]["confirmed"] >= 5  # the confirmation topic is allowed both ways
    assert snap["outbox"]["depth"] <= 3, snap["outbox"]
