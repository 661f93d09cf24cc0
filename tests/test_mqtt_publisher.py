"""The MQTT publisher drains the durable outbox to a real mosquitto; nothing leaves before PUBACK."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.broker import BrokerSettings
from bus.outbox import Outbox
from bus.publisher import MqttPublisher
from testkit.services import Mosquitto

pytestmark = pytest.mark.integration


class Subscriber:
    """A persistent-session QoS 1 subscriber collecting payloads (as ingest will be)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.got: list[int] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-sub", clean_session=False
        )
        self.client.username_pw_set(broker.username, broker.password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("t/#", qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.got.append(int(m.payload))
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _until(cond, limit_s: float = 30.0) -> None:
    """Wait until `cond()` holds (polling: the condition spans the outbox and a paho thread)."""
    async with asyncio.timeout(limit_s):
        while not cond():  # noqa: ASYNC110 - no event to wait on across SQLite and paho's thread
            await asyncio.sleep(0.05)


def _settings(broker: Mosquitto, password: str | None = None) -> BrokerSettings:
    return BrokerSettings(
        broker.host,
        broker.port,
        "test-collector",
        broker.username,
        password if password is not None else broker.password,
    )


async def test_every_message_arrives_and_leaves_the_outbox_only_when_acknowledged(
    mosquitto_private: Mosquitto, tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto_private)
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=50_000_000, max_age_s=86_400)
    pub = MqttPublisher(_settings(mosquitto_private), outbox)
    try:
        outbox.put_many((f"t/{i % 7}", str(i).encode()) for i in range(3000))
        await pub.start()
        pub.notify()
        await _until(lambda: outbox.depth()[0] == 0 and len(set(sub.got)) == 3000)
        assert pub.acked == 3000
        assert set(sub.got) == set(range(3000))
    finally:
        await pub.stop()
        sub.close()
        outbox.close()


async def test_broker_outage_loses_nothing(mosquitto_private: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(mosquitto_private)
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=50_000_000, max_age_s=86_400)
    pub = MqttPublisher(_settings(mosquitto_private), outbox)
    try:
        await pub.start()
        for i in range(1000):
            outbox.put(f"t/{i % 5}", str(i).encode())
            pub.notify()
            if i == 300:
                mosquitto_private.stop()  # graceful stop: the broker saves its persistent sessions
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(3)
        assert not pub.connected.is_set()
        assert outbox.depth()[0] > 0  # what the broker did not acknowledge is still held
        mosquitto_private.start()
        await _until(lambda: outbox.depth()[0] == 0 and len(set(sub.got)) == 1000, limit_s=60)
        # QoS 1 is at-least-once: a message the broker had taken but not yet acknowledged when it
        # stopped is sent again; none is missing.
        assert set(sub.got) == set(range(1000))
    finally:
        await pub.stop()
        sub.close()
        outbox.close()


async def test_wrong_password_keeps_everything_in_the_outbox(
    mosquitto_private: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=50_000_000, max_age_s=86_400)
    pub = MqttPublisher(_settings(mosquitto_private, password="wrong-password"), outbox)
    try:
        outbox.put_many((f"t/{i}", b"x") for i in range(10))
        await pub.start()
        pub.notify()
        await asyncio.sleep(3)
        assert not pub.connected.is_set()
        assert outbox.depth()[0] == 10
        refusals = [r for r in caplog.records if "refused the connection" in r.getMessage()]
        assert len(refusals) == 1  # logged once, not once per retry
        assert "wrong-password" not in caplog.text
    finally:
        await pub.stop()
        outbox.close()


async def test_a_refused_message_is_kept_and_retried_paced_while_the_rest_flows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The broker's ACL denies `denied/#`: mosquitto answers an MQTT 5 publish there with PUBACK
    # "Not authorized" (0x87). Retrying at once would spin on it forever.
    (tmp_path / "m").mkdir()
    broker = Mosquitto(tmp_path / "m", acl="user roomguard\ntopic readwrite t/#\n")
    broker.start()
    sub = Subscriber(broker)
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=50_000_000, max_age_s=86_400)
    pub = MqttPublisher(_settings(broker), outbox, refused_retry_s=(1.0, 1.0))
    try:
        outbox.put_many([("denied/x", b"-1"), *((f"t/{i % 7}", str(i).encode()) for i in range(500))])
        await pub.start()
        pub.notify()
        # Everything else is delivered and acknowledged; the refused message is kept.
        await _until(lambda: len(set(sub.got)) == 500 and outbox.depth()[0] == 1)
        assert pub.refused == 1
        await asyncio.sleep(0.5)
        assert pub.refused == 1  # not sent again at once
        await _until(lambda: pub.refused >= 2, limit_s=5)  # but again after the retry delay
        assert "denied/x" in caplog.text
        assert "Not authorized" in caplog.text
        # The administrator fixes the ACL: the next retry delivers it and the outbox empties.
        broker.acl_path.write_text("user roomguard\ntopic readwrite t/#\ntopic readwrite denied/#\n")
        broker.reload()
        await _until(lambda: outbox.depth()[0] == 0, limit_s=10)
    finally:
        await pub.stop()
        sub.close()
        outbox.close()
        broker.stop()
