"""Smoke tests of the mosquitto fixture with paho-mqtt 2: auth, QoS 1, persistence across a restart."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from testkit.services import Mosquitto

pytestmark = pytest.mark.integration

TIMEOUT_S = 5.0


class Peer:
    """A paho client on its own network thread that records CONNACK codes and received messages."""

    def __init__(
        self,
        broker: Mosquitto,
        client_id: str = "",
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        password: str | None = None,
        persistent: bool = False,
    ) -> None:
        self.broker = broker
        self.protocol = protocol
        self.persistent = persistent
        self.connacks: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            # MQTT 3.1.1: a persistent session is clean_session=False (MQTT 5 uses clean_start instead).
            clean_session=(not persistent) if protocol is not MQTTProtocolVersion.MQTTv5 else None,
        )
        if password is not None:
            self.client.username_pw_set(broker.username, password)
        self.client.on_connect = lambda c, u, flags, rc, props: self.connacks.put(rc)
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self.subscribed.set()

    def connect(self) -> ReasonCode:
        """Connect and return the broker's CONNACK reason code."""
        kwargs: dict[str, object] = {}
        if self.protocol is MQTTProtocolVersion.MQTTv5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            # MQTT 5 §3.1.2.11.2: without a session expiry interval the session ends with the connection.
            props.SessionExpiryInterval = 3600 if self.persistent else 0
            kwargs = {"clean_start": not self.persistent, "properties": props}
        self.client.connect(self.broker.host, self.broker.port, keepalive=10, **kwargs)  # type: ignore[arg-type]
        self.client.loop_start()
        return self.connacks.get(timeout=TIMEOUT_S)

    def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 and wait for the SUBACK."""
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(TIMEOUT_S), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the PUBACK."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=TIMEOUT_S)
        assert info.is_published(), "no PUBACK"

    def close(self) -> None:
        """Disconnect cleanly (a persistent session stays on the broker)."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.close()


def _peer(peers: list[Peer], broker: Mosquitto, **kwargs: object) -> Peer:
    peer = Peer(broker, **kwargs)  # type: ignore[arg-type]
    peers.append(peer)
    return peer


def test_qos1_publish_reaches_subscriber_with_password(mosquitto: Mosquitto, peers: list[Peer]) -> None:
    topic = f"roomguard/v1/test/{time.monotonic_ns()}/readings"
    sub = _peer(peers, mosquitto, password=mosquitto.password)
    assert sub.connect() == "Success"
    sub.subscribe(topic)
    pub = _peer(peers, mosquitto, password=mosquitto.password)
    assert pub.connect() == "Success"
    pub.publish(topic, b'{"schema": 1}')
    msg = sub.messages.get(timeout=TIMEOUT_S)
    assert (msg.topic, msg.payload, msg.qos) == (topic, b'{"schema": 1}', 1)


@pytest.mark.parametrize("password", [None, "wrong"])
@pytest.mark.parametrize("protocol", [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311])
def test_connection_refused_without_the_password(
    mosquitto: Mosquitto, peers: list[Peer], password: str | None, protocol: MQTTProtocolVersion
) -> None:
    peer = _peer(peers, mosquitto, password=password, protocol=protocol)
    code = peer.connect()
    assert code.is_failure
    # MQTT 5 reason codes 0x86/0x87; MQTT 3.1.1 return codes 4/5, which paho maps onto the same names.
    assert code.getName() in ("Not authorized", "Bad user name or password")


@pytest.mark.parametrize("protocol", [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311])
def test_persistent_session_gets_message_published_while_offline_across_restart(
    mosquitto_private: Mosquitto, peers: list[Peer], protocol: MQTTProtocolVersion
) -> None:
    broker = mosquitto_private
    topic = "roomguard/v1/tpe1/mr1/ups1/readings"
    client_id = f"roomguard-ingest-test-{protocol.name}"
    sub = Peer(broker, client_id=client_id, protocol=protocol, password=broker.password, persistent=True)
    assert sub.connect() == "Success"
    sub.subscribe(topic)
    sub.close()

    pub = _peer(peers, broker, password=broker.password)
    assert pub.connect() == "Success"
    pub.publish(topic, b"while-offline")
    # The queued message and the session survive a graceful restart on the same port (saved on SIGTERM).
    broker.stop()
    broker.start()

    again = _peer(peers, broker, client_id=client_id, protocol=protocol, password=broker.password,
                  persistent=True)  # fmt: skip
    assert again.connect() == "Success"
    msg = again.messages.get(timeout=TIMEOUT_S)
    assert (msg.topic, msg.payload, msg.qos) == (topic, b"while-offline", 1)


def test_sigkill_after_autosave_keeps_the_queued_message(
    mosquitto_private: Mosquitto, peers: list[Peer]
) -> None:
    """`mosquitto_private` autosaves every second, so even a SIGKILL keeps what is older than that."""
    broker = mosquitto_private
    topic = "roomguard/v1/tpe1/mr1/ups1/readings"
    sub = Peer(broker, client_id="roomguard-ingest-kill", password=broker.password, persistent=True)
    assert sub.connect() == "Success"
    sub.subscribe(topic)
    sub.close()
    pub = _peer(peers, broker, password=broker.password)
    assert pub.connect() == "Success"
    pub.publish(topic, b"before-kill")
    time.sleep(2.5)  # > autosave_interval 1 s
    broker.kill()
    broker.start()
    again = _peer(peers, broker, client_id="roomguard-ingest-kill", password=broker.password, persistent=True)
    assert again.connect() == "Success"
    assert again.messages.get(timeout=TIMEOUT_S).payload == b"before-kill"
