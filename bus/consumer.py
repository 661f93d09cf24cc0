"""Durable MQTT consumer: every package that reads the bus hands it a batch handler.

Delivery: a persistent MQTT 5 session (fixed client id, clean start off, session expiry) — or with MQTT
3.1.1 (configured, or "auto" against a broker without MQTT 5) clean_session off — with QoS 1 and paho's
manual ack. A message is acked (PUBACK) only after the handler returned True for the batch holding it, so
a crash or an outage of whatever the handler writes to leaves it with the broker, which delivers it again
(at least once: handlers are idempotent).

Flow control: mosquitto sends at most N unacknowledged QoS 1 messages to a client. For an MQTT 5 client
N is the client's CONNECT Receive Maximum (mosquitto 2.0.11 then ignores `max_inflight_messages`, which
only applies to MQTT 3.1.1 clients; default 20). Setting Receive Maximum to about two batches lets a batch
fill while the previous one is handled, and the same number bounds what is held in memory while the
handler cannot finish: the rest waits in the broker's queue (`max_queued_messages`, see
deploy/mosquitto/roomguard.conf). A shared subscription (`$share/<group>/…`) splits the load between
consumers of one group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bus.broker import BrokerSettings, ProtocolChoice, ProtocolFallback, make_client
from bus.mqtt_loop import MqttLoopDriver

_LOG = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86_400
# Longest stretch of work (acking, or a handler's decoding) between two event-loop turns: a batch of
# thousands of messages must not hold a loop that, in `roomguard run`, also polls devices.
WORK_SLICE_S = 0.02


@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    """What to subscribe to and how to batch it (defaults are the production values)."""

    topic: str
    shared_group: str | None = None
    batch_size: int = 5000
    batch_delay_s: float = 1.0
    # MQTT 5 Receive Maximum (≤ 65535): the broker's in-flight window toward us, and our backlog bound.
    receive_maximum: int = 10_000
    session_expiry_s: int = SESSION_EXPIRY_S
    flush_timeout_s: float = 10.0

    @property
    def subscription(self) -> str:
        """The subscription filter, shared (`$share/<group>/…`) if a group is set."""
        return f"$share/{self.shared_group}/{self.topic}" if self.shared_group else self.topic


@dataclass(frozen=True, slots=True)
class Message:
    """One received MQTT message; `conn` numbers the connection it came on."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    conn: int


# handler(batch, stop, deadline) → True once the batch is done with (it is acked), False to leave it
# unacked (the broker delivers it again). `deadline` (time.monotonic) is set while shutting down.
BatchHandler = Callable[[list[Message], asyncio.Event, float | None], Awaitable[bool]]


@dataclass(slots=True)
class ConnectionState:
    """The consumer's broker connection, for status snapshots."""

    connected: bool = False
    since: str | None = None


class DurableConsumer(ProtocolFallback):
    """Subscribes with a persistent session, hands batches to a handler, acks what it finished."""

    def __init__(self, broker: BrokerSettings, settings: ConsumerSettings, name: str = "consumer") -> None:
        self.broker = broker
        self.settings = settings
        self.name = name
        self.state = ConnectionState()
        self.received = 0
        self.connected = asyncio.Event()
        self._queue: deque[Message] = deque()
        self._arrived = asyncio.Event()
        self._in_batch = 0
        self._stopping = False
        self._conn = 0  # incremented per successful connect
        self._driver: MqttLoopDriver | None = None
        self._protocol = ProtocolChoice(broker)
        self._connacked = False  # per connection attempt: did the broker answer our CONNECT?
        self._switch: asyncio.Task[None] | None = None
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        v5 = self._protocol.current == "5"
        # PUBACK only when we call ack(), i.e. after the handler finished. MQTT 3.1.1 keeps the session
        # with clean_session off (it has no expiry: the broker keeps it until a clean connect).
        extra: dict[str, Any] = {} if v5 else {"clean_session": False}
        client = make_client(self.broker, self._protocol.current, manual_ack=True, **extra)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect(self) -> None:
        self._connacked = False
        b = self.broker
        if self._protocol.current == "5":
            self._client.connect_async(
                b.host,
                b.port,
                keepalive=b.keepalive_s,
                clean_start=False,
                properties=self._connect_properties(),
            )
        else:
            # No Receive Maximum in 3.1.1: the broker's max_inflight_messages bounds unacked messages.
            self._client.connect_async(b.host, b.port, keepalive=b.keepalive_s)
        self._drive(self.name)

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        # Without an expiry an MQTT 5 session ends with its connection, clean start or not (spec 3.1.2.11.2)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = max(1, min(self.settings.receive_maximum, 65_535))
        return props

    # --- paho callbacks (on the event loop: bus/mqtt_loop.py) ---------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self._connacked = True
        if not rc.is_failure:
            # Subscribing again on every connect is harmless with a kept session and needed without one.
            client.subscribe(self.settings.subscription, qos=1)
        self._connected(rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Messages of a connection arrive after its CONNACK was handled, so _conn is the right one.
        self._queue.append(Message(msg.mid, msg.qos, msg.topic, bytes(msg.payload), self._conn))
        self.received += 1
        # Wake the batcher only when it has something to do: a first message, or a full batch.
        queued = len(self._queue)
        if queued == 1 or queued >= self.settings.batch_size:
            self._arrived.set()

    # --- on the event loop ----------------------------------------------------------------------
    def _connected(self, rc: ReasonCode) -> None:
        if rc.is_failure:
            if self._fall_back(rc, connacked=True):
                return
            _LOG.warning(
                "MQTT broker %s:%d refused %s: %s", self.broker.host, self.broker.port, self.name, rc
            )
            return
        self._conn += 1
        self._protocol.connected()
        if self._driver is not None:
            self._driver.connected()
        self.connected.set()
        self.state.connected = True
        self.state.since = datetime.now(UTC).isoformat()
        _LOG.info(
            "%s connected to %s:%d, subscribed to %s",
            self.name,
            self.broker.host,
            self.broker.port,
            self.settings.subscription,
        )

    def _disconnected(self, rc: ReasonCode, client: mqtt.Client, connacked: bool) -> None:
        if client is not self._client or self._fall_back(rc, connacked=connacked):
            return  # the old client of a protocol switch, or the closed MQTT 5 attempt that starts one
        if self.connected.is_set() and not self._stopping:
            _LOG.warning("%s lost the MQTT broker (%s); unacked messages stay queued there", self.name, rc)
        if self.state.connected:
            self.state.since = datetime.now(UTC).isoformat()
        self.connected.clear()
        self.state.connected = False

    async def run(self, handler: BatchHandler, stop: asyncio.Event) -> None:
        """Connect, then batch, handle and ack until `stop` is set; what was received is handled last."""
        self._connect()
        try:
            while not stop.is_set():
                batch = await self._collect(stop)
                if batch:
                    await self._handle(handler, batch, stop, None)
            # Graceful stop: hand over what was already received (bounded by the flush timeout); whatever
            # is not finished stays unacked and comes back from the broker.
            deadline = time.monotonic() + self.settings.flush_timeout_s
            while self._queue and time.monotonic() < deadline:
                await self._handle(handler, self._take(), stop, deadline)
        finally:
            self._stopping = True
            if self._switch is not None:
                await self._switch
            await self._stop_driver()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish on the consumer's connection (while disconnected paho keeps it for the reconnect)."""
        self._client.publish(topic, payload, qos=qos)

    @property
    def backlog(self) -> int:
        """Messages received and not yet acked (queued plus the batch being handled)."""
        return len(self._queue) + self._in_batch

    async def _handle(
        self, handler: BatchHandler, batch: list[Message], stop: asyncio.Event, deadline: float | None
    ) -> None:
        self._in_batch = len(batch)
        try:
            if await handler(batch, stop, deadline):
                await self._ack(batch)
        finally:
            self._in_batch = 0

    def _take(self) -> list[Message]:
        n = min(len(self._queue), self.settings.batch_size)
        return [self._queue.popleft() for _ in range(n)]

    async def _collect(self, stop: asyncio.Event) -> list[Message]:
        """Wait for a first message, then up to batch_delay_s or batch_size, whichever comes first."""
        waiter = asyncio.create_task(stop.wait())
        try:
            while not self._queue and not stop.is_set():
                self._arrived.clear()
                arrived = asyncio.create_task(self._arrived.wait())
                await asyncio.wait({waiter, arrived}, return_when=asyncio.FIRST_COMPLETED)
                arrived.cancel()
            deadline = time.monotonic() + self.settings.batch_delay_s
            while len(self._queue) < self.settings.batch_size and not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.clear()
                arrived = asyncio.create_task(self._arrived.wait())
                await asyncio.wait({waiter, arrived}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                arrived.cancel()
        finally:
            waiter.cancel()
        return self._take()

    async def _ack(self, batch: list[Message]) -> None:
        # Only messages of the current connection: after a reconnect the broker sends the unacked ones
        # again under packet ids that may by now belong to other messages, so an old id must not be acked.
        done: set[int] = set()
        turn = time.perf_counter()
        for msg in batch:
            if time.perf_counter() - turn > WORK_SLICE_S:
                await asyncio.sleep(0)
                turn = time.perf_counter()
            if not self.connected.is_set():
                return  # the broker delivers them again on the next connection
            if msg.qos > 0 and msg.conn == self._conn and msg.mid not in done:
                done.add(msg.mid)
                self._client.ack(msg.mid, msg.qos)


__all__ = [
    "SESSION_EXPIRY_S",
    "WORK_SLICE_S",
    "BatchHandler",
    "ConnectionState",
    "ConsumerSettings",
    "DurableConsumer",
    "Message",
]
