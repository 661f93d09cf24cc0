"""TLS (mutual) and protocol choice against a real mosquitto 2 with a TLS listener and a test CA."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from bus.broker import BrokerSettings, ProtocolChoice, broker_settings, make_client, refuses_protocol
from bus.outbox import Outbox
from bus.publisher import MqttPublisher
from devices.wire import encode_poll, topic_readings
from ingest.bridge import IngestBridge, IngestSettings
from ingest.influx_writer import InfluxV1Writer
from siteconfig.config import SiteConfig
from testkit.services import Influxd, Mosquitto, TestPki, serve
from tests.test_ingest import _poll

pytestmark = pytest.mark.integration

PASSWORD_ENV = "ROOMGUARD_TEST_MQTT_PASSWORD"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto of this test with a mutual-TLS listener (free to stop/start)."""
    yield from serve(Mosquitto(tmp_path / "mosquitto", autosave_interval_s=1, tls=True))


def _pki(broker: Mosquitto) -> TestPki:
    assert broker.pki is not None
    return broker.pki


def _tls_site(
    broker: Mosquitto,
    protocol: str = "auto",
    *,
    client_cert: bool = True,
    ca: Path | None = None,
    system_ca: bool = False,
    influx: dict[str, Any] | None = None,
) -> SiteConfig:
    pki = _pki(broker)
    os.environ[PASSWORD_ENV] = broker.password
    tls: dict[str, Any] = {} if system_ca else {"ca_file": str(ca or pki.ca_cert)}
    if client_cert:
        tls |= {"cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}
    return SiteConfig.model_validate(
        {
            "site": {"id": "tls1", "name": "test"},
            "rooms": [{"id": "r1", "name": "room"}],
            "mqtt": {
                "host": broker.host,
                "port": broker.tls_port,
                "username": broker.username,
                "password": {"env": PASSWORD_ENV},
                "tls": tls,
                "protocol": protocol,
            },
            "influxdb": influx or {"url": "http://127.0.0.1:1", "api": "v1", "database": "x"},
        }
    )


class TlsSubscriber:
    """A QoS 1 subscriber over mutual TLS collecting payloads."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.got: list[int] = []
        self.subscribed = threading.Event()
        self.client = make_client(settings, "5")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("t/#", qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.got.append(int(m.payload))
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _until(cond: Callable[[], bool], limit_s: float = 30.0) -> None:
    async with asyncio.timeout(limit_s):
        while not cond():  # noqa: ASYNC110 - conditions span paho's thread, SQLite and a database
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _publisher(
    settings: BrokerSettings, tmp: Path, n: int
) -> AsyncIterator[tuple[MqttPublisher, Outbox]]:
    outbox = Outbox(tmp / f"outbox-{settings.client_id}.db", max_bytes=50_000_000, max_age_s=86_400)
    pub = MqttPublisher(settings, outbox)
    outbox.put_many((f"t/{i % 3}", str(i).encode()) for i in range(n))
    await pub.start()
    pub.notify()
    try:
        yield pub, outbox
    finally:
        await pub.stop()
        outbox.close()


# --- TLS ------------------------------------------------------------------------------------------


async def test_publisher_over_mutual_tls_delivers(tls_broker: Mosquitto, tmp_path: Path) -> None:
    settings = broker_settings(_tls_site(tls_broker), "tls-pub")
    assert settings.tls
    assert settings.cert_file
    sub = TlsSubscriber(broker_settings(_tls_site(tls_broker), "tls-sub"))
    try:
        async with _publisher(settings, tmp_path, 200) as (pub, outbox):
            await _until(lambda: outbox.depth()[0] == 0 and len(set(sub.got)) == 200)
            assert pub.protocol == "5"  # "auto" against mosquitto 2 stays on MQTT 5
    finally:
        sub.close()


async def test_client_without_certificate_is_refused(tls_broker: Mosquitto, tmp_path: Path) -> None:
    settings = broker_settings(_tls_site(tls_broker, client_cert=False), "tls-nocert")
    async with _publisher(settings, tmp_path, 5) as (pub, outbox):
        await asyncio.sleep(3)
        assert not pub.connected.is_set()
        assert outbox.depth()[0] == 5
        assert pub.protocol == "5"  # a TLS refusal is no reason to change the protocol


async def test_client_trusting_the_wrong_ca_is_refused(tls_broker: Mosquitto, tmp_path: Path) -> None:
    settings = broker_settings(_tls_site(tls_broker, ca=_pki(tls_broker).other_ca_cert), "tls-wrongca")
    async with _publisher(settings, tmp_path, 5) as (pub, outbox):
        await asyncio.sleep(3)
        assert not pub.connected.is_set()
        assert outbox.depth()[0] == 5
        assert pub.published == 0


def test_tls_section_without_ca_uses_the_system_store(tls_broker: Mosquitto) -> None:
    settings = broker_settings(_tls_site(tls_broker, client_cert=False, system_ca=True), "x")
    assert settings.tls
    assert settings.ca_file is None
    # The test CA is not in the system store: verification fails, so the TLS handshake really ran.
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        make_client(settings, "5").connect(settings.host, settings.port)


# --- ingest over TLS ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _bridge(site: SiteConfig, influxd: Influxd, db: str, tmp: Path) -> AsyncIterator[IngestBridge]:
    settings = IngestSettings(batch_delay_s=0.2, backoff_first_s=0.2, backoff_cap_s=2.0, session_expiry_s=120)
    brk = broker_settings(site, "tls-ingest")
    bridge = IngestBridge(brk, InfluxV1Writer(influxd.url, db), settings, tmp / "dead-letter.jsonl")
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await _until(lambda: bridge.stats.broker_connected, 10)
    await asyncio.sleep(0.3)  # the SUBACK follows the CONNACK
    try:
        yield bridge
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _publish_polls(settings: BrokerSettings, devices: list[str], seqs: range) -> None:
    client = make_client(settings, "5")
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        infos = [
            client.publish(
                topic_readings("roomguard/v1", "tls1", "r1", d), encode_poll(_poll("tls1", d, i), i), qos=1
            )
            for i in seqs
            for d in devices
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("protocol", ["auto", "3.1.1"])
async def test_ingest_over_mutual_tls_writes_to_influxd(
    tls_broker: Mosquitto, influxd: Influxd, tmp_path: Path, protocol: str
) -> None:
    db = f"tls_ingest_{protocol.replace('.', '')}"
    influxd.create_database(db)
    site = _tls_site(tls_broker, protocol)
    pub_settings = broker_settings(site, "tls-poll-pub")
    async with _bridge(site, influxd, db, tmp_path) as bridge:
        assert bridge.protocol == ("3.1.1" if protocol == "3.1.1" else "5")
        _publish_polls(pub_settings, ["env-1", "env-2"], range(10))
        await _until(lambda: len(influxd.rows("SELECT temp_c FROM env", db)) == 20, 20)
    # Persistent session: what arrives while ingest is away (across a broker restart) is kept for it.
    tls_broker.stop()
    tls_broker.start()
    _publish_polls(pub_settings, ["env-1", "env-2"], range(10, 20))
    async with _bridge(site, influxd, db, tmp_path):
        await _until(lambda: len(influxd.rows("SELECT temp_c FROM env", db)) == 40, 20)


async def test_publisher_forced_to_311(tls_broker: Mosquitto, tmp_path: Path) -> None:
    settings = broker_settings(_tls_site(tls_broker, "3.1.1"), "tls-pub-311")
    assert settings.protocol == "3.1.1"
    assert not settings.protocol_fallback
    sub = TlsSubscriber(broker_settings(_tls_site(tls_broker), "tls-sub-311"))
    try:
        async with _publisher(settings, tmp_path, 100) as (pub, outbox):
            await _until(lambda: outbox.depth()[0] == 0 and len(set(sub.got)) == 100)
            assert pub.protocol == "3.1.1"
            assert pub._client.protocol == mqtt.MQTTv311
    finally:
        sub.close()


# --- the fallback decision ------------------------------------------------------------------------


def _auto() -> ProtocolChoice:
    return ProtocolChoice(BrokerSettings("h", 1, "c", protocol="5", protocol_fallback=True))


def _current(choice: ProtocolChoice) -> str:
    """`choice.current`, read afresh: should_fall_back() switches it, and mypy would otherwise keep the
    value an earlier assert narrowed it to."""
    return choice.current


def test_refuses_protocol_reason_codes() -> None:
    assert refuses_protocol(ReasonCode(PacketTypes.CONNACK, identifier=0x84), connacked=True)
    assert refuses_protocol(ReasonCode(PacketTypes.CONNACK, "Unsupported protocol version"), connacked=True)
    assert refuses_protocol(1, connacked=True)  # a bare 3.1.1 CONNACK return code
    assert refuses_protocol(None, connacked=False)  # closed right after CONNECT
    assert not refuses_protocol(ReasonCode(PacketTypes.CONNACK, "Bad user name or password"), connacked=True)
    assert not refuses_protocol(ReasonCode(PacketTypes.CONNACK, "Not authorized"), connacked=True)
    assert not refuses_protocol(5, connacked=True)


def test_auto_falls_back_once_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    choice = _auto()
    caplog.set_level(logging.WARNING)
    assert _current(choice) == "5"
    assert not choice.should_fall_back(ReasonCode(PacketTypes.CONNACK, "Not authorized"), connacked=True)
    assert choice.should_fall_back(ReasonCode(PacketTypes.CONNACK, identifier=0x84), connacked=True)
    assert _current(choice) == "3.1.1"
    assert not choice.should_fall_back(1, connacked=True)  # already on 3.1.1: nothing further to try
    assert len([r for r in caplog.records if "using MQTT 3.1.1" in r.getMessage()]) == 1


def test_forced_protocols_never_switch() -> None:
    for proto in ("5", "3.1.1"):
        choice = ProtocolChoice(BrokerSettings("h", 1, "c", protocol=proto))
        assert not choice.should_fall_back(None, connacked=False)
        assert choice.current == proto


def test_no_fallback_after_mqtt5_once_worked() -> None:
    choice = _auto()
    choice.connected()
    assert not choice.should_fall_back(None, connacked=False)
    assert choice.current == "5"


async def test_publisher_falls_back_when_the_broker_closes_after_connect(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A fake broker that hangs up on the first CONNECT (as a 3.1.1-only one may) and then forwards."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    first = True

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal first
        if first:
            first = False
            await reader.read(1)  # the CONNECT arrived
            writer.close()
            return
        up_r, up_w = await asyncio.open_connection(mosquitto.host, mosquitto.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    server = await asyncio.start_server(relay, sock=listener)
    settings = BrokerSettings(
        mosquitto.host,
        port,
        "fallback-pub",
        mosquitto.username,
        mosquitto.password,
        protocol="5",
        protocol_fallback=True,
    )
    try:
        async with _publisher(settings, tmp_path, 20) as (pub, outbox):
            await _until(lambda: outbox.depth()[0] == 0, 20)
            assert pub.protocol == "3.1.1"
    finally:
        server.close()


def test_a_close_is_only_a_hint() -> None:
    choice = _auto()
    assert choice.should_fall_back(None, connacked=False)  # closed after an MQTT 5 CONNECT: try 3.1.1
    assert _current(choice) == "3.1.1"
    assert choice.should_fall_back(None, connacked=False)  # 3.1.1 closed too (TLS 1.3 cert refusal)
    assert _current(choice) == "5"
    assert not choice.should_fall_back(None, connacked=False)  # no more guessing from closes
    assert choice.should_fall_back(ReasonCode(PacketTypes.CONNACK, identifier=0x84), connacked=True)
    assert _current(choice) == "3.1.1"


def test_a_3_1_1_answer_confirms_the_fallback() -> None:
    choice = _auto()
    assert choice.should_fall_back(None, connacked=False)
    assert not choice.should_fall_back(ReasonCode(PacketTypes.CONNACK, "Not authorized"), connacked=True)
    assert not choice.should_fall_back(None, connacked=False)
    assert choice.current == "3.1.1"
