"""The API's live view: pure state updates with an injected clock, then a real mosquitto carrying the
collector's own wire messages (devices.wire encoders) to `GET /api/v1/readings` of an app built by
create_app with the site; a malformed message is counted, not fatal; a broker restart is survived."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from api.app import create_app
from api.live import LiveState
from bus.broker_acl import broker_acl
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality
from devices.wire import (
    COMPLIANCE_LEVEL,
    DeviceStatus,
    encode_poll,
    encode_status,
    topic_collector_status,
    topic_compliance,
    topic_readings,
    topic_status,
)
from siteconfig.api_config import ApiConfig
from siteconfig.config import SiteConfig, load_site
from testkit.services import Mosquitto
from tests.api_support import FAST_HASHER, PASSWORD, T0, fresh_engine, migrated_template, store_with_users

PREFIX = "roomguard/v1"
PASSWORD_ENV = "ROOMGUARD_TEST_API_MQTT_PASSWORD"


def _site(tmp: Path, port: int = 1883, roles: str = "") -> SiteConfig:
    site_id = "s" + uuid.uuid4().hex[:8]
    path = tmp / "site.yaml"
    path.write_text(f"""\
site: {{id: {site_id}, name: 測試站}}
rooms:
  - {{id: mr1, name: 機房一, zones: [{{id: cold-a, name: 冷通道 A, racks: [r01, r02]}}]}}
devices:
  - {{id: th-2, name: 溫濕度二, room: mr1, zone: cold-a, rack: r02, profile: sht20-xy-md02,
     settings: {{resolution: x10}}, modbus: {{host: 127.0.0.1, port: 1502, unit_id: 2}}}}
  - {{id: th-1, name: 溫濕度一, room: mr1, zone: cold-a, rack: r01, profile: sht20-xy-md02,
     settings: {{resolution: x10}}, modbus: {{host: 127.0.0.1, port: 1502, unit_id: 1}}}}
mqtt: {{host: 127.0.0.1, port: {port}, username: roomguard, password: {{env: {PASSWORD_ENV}}}{roles}}}
""")
    return load_site(path)


def _poll(site: str, device: str, ts: datetime, temp: float | None, quality: Quality = Quality.GOOD) -> bytes:
    ref = DeviceRef(site, "mr1", device, DeviceClass.ENV, "sht20-xy-md02", {"zone": "cold-a"})
    metrics = (
        Metric("temp_c", temp, Quality.GOOD if temp is not None else Quality.COMM_ERROR),
        Metric("rh_pct", 48.5 if temp is not None else None, quality),
    )
    return encode_poll(PollResult(ref, ts, metrics, duration_s=0.042, quality=quality), seq=1, epoch="e1")


def _check(site: str, item: str, ts: datetime, status: str, days: int | None) -> bytes:
    ref = DeviceRef(site, COMPLIANCE_LEVEL, item, DeviceClass.COMPLIANCE, "roomguard-compliance")
    metrics = (
        Metric("status", status),
        Metric("days_to_due", days, Quality.GOOD if days is not None else Quality.UNAVAILABLE),
    )
    return encode_poll(PollResult(ref, ts, metrics), seq=3)


# -- the pure state ---------------------------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path) -> tuple[SiteConfig, LiveState]:
    site = _site(tmp_path)
    return site, LiveState.of_site(site)


def test_every_site_device_is_there_in_site_order_before_anything_arrives(
    state: tuple[SiteConfig, LiveState],
) -> None:
    _, live = state
    snap = live.snapshot(T0, connected=False)
    assert snap.taken_at == T0
    assert [(d.device, d.name, d.room, d.zone, d.rack, d.model) for d in snap.devices] == [
        ("th-2", "溫濕度二", "mr1", "cold-a", "r02", "sht20-xy-md02"),
        ("th-1", "溫濕度一", "mr1", "cold-a", "r01", "sht20-xy-md02"),
    ]
    assert all(d.at is None and d.quality == "none" and not d.metrics for d in snap.devices)
    assert snap.devices[0].device_class == "env"  # from the profile, before any reading


def test_an_unchanged_state_hands_out_the_same_snapshot_for_a_second(
    state: tuple[SiteConfig, LiveState],
) -> None:
    """Routes keep what they made of a snapshot by identity (the readings body, the page): the same one
    comes back while no message arrived, the link is the same and it is under a second old."""
    site, live = state
    sid = site.site.id
    first = live.snapshot(T0, connected=True)
    assert live.snapshot(T0 + timedelta(milliseconds=900), connected=True) is first
    assert live.snapshot(T0 + timedelta(milliseconds=900), connected=False) is not first  # the link
    again = live.snapshot(T0 + timedelta(milliseconds=950), connected=True)
    assert again is not first
    assert again.taken_at == T0 + timedelta(milliseconds=950)
    assert live.snapshot(T0 + timedelta(seconds=2), connected=True) is not again  # too old
    live.apply(topic_readings(PREFIX, sid, "mr1", "th-1"), _poll(sid, "th-1", T0, 23.4), T0)
    later = live.snapshot(T0 + timedelta(seconds=2, milliseconds=10), connected=True)
    th1 = later.device("th-1")
    assert th1 is not None
    assert th1.metrics["temp_c"].value == 23.4


def test_a_reading_a_status_a_collector_and_a_check_result_are_held_newest_first(
    state: tuple[SiteConfig, LiveState],
) -> None:
    site, live = state
    sid = site.site.id
    t1 = T0 + timedelta(seconds=5)
    got = live.apply(topic_readings(PREFIX, sid, "mr1", "th-1"), _poll(sid, "th-1", t1, 23.4), T0)
    assert got.outcome == "reading"
    status = encode_status(DeviceStatus("offline", t1, "timeout", quality="comm_error"))
    assert live.apply(topic_status(PREFIX, sid, "mr1", "th-2"), status, T0).outcome == "status"
    collector = encode_status(DeviceStatus("online", t1))
    assert live.apply(topic_collector_status(PREFIX, sid, "edge-1"), collector, T0).outcome == "collector"
    check = _check(sid, "cc16000-05-ups-test", t1, "warn", 3)
    assert live.apply(topic_compliance(PREFIX, sid, "cc16000-05-ups-test"), check, T0).outcome == "check"

    snap = live.snapshot(t1 + timedelta(seconds=2), connected=True)
    th1 = snap.device("th-1")
    assert th1 is not None
    assert (th1.at, th1.quality, th1.duration_s) == (t1, "good", 0.042)
    assert (th1.metrics["temp_c"].value, th1.metrics["temp_c"].unit) == (23.4, "°C")
    assert (th1.metrics["rh_pct"].value, th1.metrics["rh_pct"].unit) == (48.5, "%")
    th2 = snap.device("th-2")
    assert th2 is not None
    assert (th2.status, th2.status_reason, th2.status_at, th2.at) == ("offline", "timeout", t1, None)
    [c] = snap.collectors
    assert (c.collector, c.state, c.at) == ("edge-1", "online", t1)
    [k] = snap.checks
    assert (k.item, k.status, k.at, dict(k.values)) == ("cc16000-05-ups-test", "warn", t1, {"days_to_due": 3})
    assert (snap.messages, snap.rejected) == (4, 0)

    # An older reading (a redelivery after a reconnect) does not replace the newer one.
    old = _poll(sid, "th-1", T0, 99.0)
    assert live.apply(topic_readings(PREFIX, sid, "mr1", "th-1"), old, T0).outcome == "ignored"
    # A reading stamped far ahead of our clock (a publisher with a wrong clock) is not taken: held, it
    # would hide every correct one after it.
    ahead = _poll(sid, "th-1", T0 + timedelta(hours=1), 50.0)
    skewed = live.apply(topic_readings(PREFIX, sid, "mr1", "th-1"), ahead, T0)
    assert (skewed.outcome, "ahead of this clock" in (skewed.reason or "")) == ("ignored", True)
    # A failed poll replaces the values: its metrics carry no value, the quality says why.
    t2 = t1 + timedelta(seconds=5)
    failed = _poll(sid, "th-1", t2, None, Quality.COMM_ERROR)
    assert live.apply(topic_readings(PREFIX, sid, "mr1", "th-1"), failed, T0).outcome == "reading"
    th1 = live.snapshot(t2, connected=True).device("th-1")
    assert th1 is not None
    assert (th1.quality, th1.metrics["temp_c"].value, th1.metrics["temp_c"].quality) == (
        "comm_error",
        None,
        "comm_error",
    )


def test_a_message_that_breaks_the_wire_contract_is_counted_never_raised(
    state: tuple[SiteConfig, LiveState],
) -> None:
    site, live = state
    sid = site.site.id
    topic = topic_readings(PREFIX, sid, "mr1", "th-1")
    for payload in (b"not json", b'{"schema":"roomguard.readings/9"}', b"{}", "溫度".encode("utf-16")):
        assert live.apply(topic, payload, T0).outcome == "rejected"
    # A reading whose payload names another device than its topic is refused too.
    other = _poll(sid, "th-2", T0, 20.0)
    bad = live.apply(topic, other, T0)
    assert (bad.outcome, "does not match its topic" in (bad.reason or "")) == ("rejected", True)
    assert live.apply(topic_status(PREFIX, sid, "mr1", "th-1"), b'{"state":"on"}', T0).outcome == "rejected"
    # Not ours: counted as received, neither held nor rejected.
    assert (
        live.apply(topic_readings(PREFIX, sid, "mr1", "ghost"), _poll(sid, "ghost", T0, 1.0), T0).outcome
        == "ignored"
    )
    assert live.apply(f"{PREFIX}/other-site/mr1/th-1/readings", b"x", T0).outcome == "ignored"
    snap = live.snapshot(T0, connected=True)
    assert (snap.messages, snap.rejected) == (8, 6)
    assert all(d.at is None for d in snap.devices)


def test_the_api_role_reads_its_site_and_writes_nothing(tmp_path: Path) -> None:
    roles = ", roles: {api: {username: roomguard-api, password: {env: X}}}"
    acl = broker_acl(_site(tmp_path, roles=roles))
    section = acl.split("user roomguard-api\n", 1)[1].split("\n\n", 1)[0]
    assert "# api\nuser roomguard-api" in acl
    assert all(line.startswith("topic read ") for line in section.splitlines()), section
    assert "/+/+/readings" in section
    assert "/+/+/status" in section
    assert "/alerts/#" in section
    assert "_ingest" not in section
    assert "write" not in section
    # Without an account of its own it reads with the plain one, which (here shared by every role)
    # reads the whole site already: no redundant lines.
    plain = broker_acl(_site(tmp_path))
    shared = plain.split("# collector + ingest + alerts + compliance + api\nuser roomguard\n", 1)[1]
    assert "topic read roomguard/v1/" in shared
    assert "/+/+/status" not in shared


# -- through a real broker ----------------------------------------------------------------------------


class Publisher:
    """A paho client publishing as the collector does (QoS 1; statuses retained)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-collector-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(broker.username, broker.password)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published(), topic

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_for(what: str, probe: Callable[[], Any], diagnosis: Callable[[], str], limit_s: float = 30) -> Any:
    """`probe()` until it returns something truthy; on the limit, fail with `diagnosis()`."""
    deadline = time.monotonic() + limit_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit_s:g} s\n{diagnosis()}")
        threading.Event().wait(0.1)


class Api:
    """An app made by create_app with the site (so it subscribes itself), logged in as the viewer."""

    def __init__(self, client: TestClient, broker: Mosquitto) -> None:
        self.client = client
        self.broker = broker
        self.last: Any = None

    def get(self, path: str) -> Any:
        r = self.client.get(path)
        assert r.status_code == 200, r.text
        self.last = r.json()
        return self.last

    def diagnosis(self) -> str:
        return f"last answer: {self.last}\nbroker log:\n{self.broker.log_tail(3000)}"


@pytest.fixture
def api_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Mosquitto], tuple[SiteConfig, Api]]]:
    monkeypatch.setenv(PASSWORD_ENV, Mosquitto.password)
    engine = fresh_engine(migrated_template(tmp_path), tmp_path)
    store_with_users(engine)
    clients: list[TestClient] = []

    def make(broker: Mosquitto) -> tuple[SiteConfig, Api]:
        site = _site(tmp_path, broker.port)
        app = create_app(
            ApiConfig(), records_url=engine, state_dir=tmp_path / "state", site=site, hasher=FAST_HASHER
        )
        client = TestClient(app).__enter__()
        clients.append(client)
        assert (
            client.post("/api/v1/auth/login", json={"username": "vera", "password": PASSWORD}).status_code
            == 200
        )
        return site, Api(client, broker)

    yield make
    for c in clients:
        c.__exit__(None, None, None)
    engine.dispose()


@pytest.mark.integration
def test_the_collectors_messages_show_in_the_readings_and_a_broken_one_is_only_counted(
    mosquitto: Mosquitto, api_for: Callable[[Mosquitto], tuple[SiteConfig, Api]]
) -> None:
    site, api = api_for(mosquitto)
    sid = site.site.id
    wait_for("API connected", lambda: api.get("/api/v1/status")["broker_connected"], api.diagnosis)
    pub = Publisher(mosquitto)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        pub.publish(topic_readings(PREFIX, sid, "mr1", "th-1"), _poll(sid, "th-1", now, 22.5))
        pub.publish(
            topic_status(PREFIX, sid, "mr1", "th-1"), encode_status(DeviceStatus("online", now)), retain=True
        )
        pub.publish(
            topic_collector_status(PREFIX, sid, "edge-1"), encode_status(DeviceStatus("online", now)), True
        )

        def th1_read() -> Any:
            body = api.get("/api/v1/readings")
            d = {x["device"]: x for x in body["devices"]}["th-1"]
            return body if d["status"] == "online" and d["metrics"] else None

        body = wait_for("th-1's reading", th1_read, api.diagnosis)
        assert [d["device"] for d in body["devices"]] == ["th-2", "th-1"]  # the site file's order
        th2, th1 = body["devices"]
        assert (th2["at"], th2["quality"], th2["metrics"]) == (None, "none", [])
        assert th1["quality"] == "good"
        assert th1["poll_s"] == 0.042
        assert datetime.fromisoformat(th1["at"]) == now
        assert th1["age_s"] >= 0
        assert {m["name"]: (m["value"], m["unit"], m["quality"]) for m in th1["metrics"]} == {
            "temp_c": (22.5, "°C", "good"),
            "rh_pct": (48.5, "%", "good"),
        }
        one = api.get("/api/v1/readings/th-1")
        assert one["metrics"] == th1["metrics"]
        missing = api.client.get("/api/v1/readings/th-9")
        assert missing.status_code == 404
        assert missing.json()["code"] == "unknown_device"
        assert "th-9" in missing.json()["message"]
        assert "th-2, th-1" in missing.json()["message"]
        devices = {d["device"]: d for d in api.get("/api/v1/devices")}
        assert (devices["th-1"]["status"], devices["th-1"]["quality"]) == ("online", "good")
        assert (devices["th-2"]["zone"], devices["th-2"]["rack"]) == ("cold-a", "r02")
        status = api.get("/api/v1/status")
        assert [(c["collector"], c["state"]) for c in status["collectors"]] == [("edge-1", "online")]

        # A malformed message: counted and dropped; the next good one still arrives.
        pub.publish(topic_readings(PREFIX, sid, "mr1", "th-1"), b'{"schema":"roomguard.readings/1","seq":-1}')
        later = now + timedelta(seconds=5)
        pub.publish(topic_readings(PREFIX, sid, "mr1", "th-1"), _poll(sid, "th-1", later, 24.0))

        def updated() -> Any:
            d = api.get("/api/v1/readings/th-1")
            return d if d["metrics"][0]["value"] == 24.0 else None

        wait_for("the reading after the broken one", updated, api.diagnosis)
        assert api.get("/api/v1/status")["rejected"] == 1
    finally:
        pub.close()


@pytest.mark.integration
def test_the_live_view_reconnects_after_a_broker_restart(
    mosquitto_private: Mosquitto, api_for: Callable[[Mosquitto], tuple[SiteConfig, Api]]
) -> None:
    site, api = api_for(mosquitto_private)
    sid = site.site.id

    def connected() -> bool:
        return bool(api.get("/api/v1/status")["broker_connected"])

    wait_for("API connected", connected, api.diagnosis)
    mosquitto_private.stop()
    wait_for("API sees the broker gone", lambda: not connected(), api.diagnosis)
    mosquitto_private.start()
    wait_for("API connected again", connected, api.diagnosis)
    pub = Publisher(mosquitto_private)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        pub.publish(topic_readings(PREFIX, sid, "mr1", "th-2"), _poll(sid, "th-2", now, 19.5))

        def heard() -> Any:
            d = api.get("/api/v1/readings/th-2")
            return d["metrics"] and d["metrics"][0]["value"] == 19.5

        wait_for("a reading after the restart", heard, api.diagnosis)
    finally:
        pub.close()
