"""Drains the durable outbox to the MQTT broker at QoS 1, recording each PUBACK in the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from bus.backoff import RateLimit
from bus.broker import BrokerSettings, ProtocolChoice, ProtocolFallback, make_client
from bus.mqtt_loop import MqttLoopDriver

_LOG = logging.getLogger(__name__)

REFUSED_RETRY_FIRST_S = 5.0
REFUSED_RETRY_CAP_S = 300.0
# Messages handed to paho per event-loop turn: a backlog of thousands after a reconnect must not hold the
# loop that polls devices (each publish costs tens of microseconds of paho and SQLite work; a poll waits
# for the loop at each of its steps, see collector/collect_publisher.py CONFIRM_SLICE).
PUBLISH_SLICE = 20
# While polls are under way, the drain pauses this long between slices instead of only yielding: a poll
# waits for the loop at each of its steps, and polls that take turns on one gateway add those waits up.
# Publishing then runs mostly between the bursts of polls (the collector sets `yield_to`).
BACKGROUND_PAUSE_S = 0.005


class OutboxMessageLike(Protocol):
    """What the publisher needs of a stored message."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class OutboxLike(Protocol):
    """The outbox operations the publisher uses (bus.outbox.Outbox)."""

    def peek(self, limit: int, after_id: int = 0) -> Sequence[OutboxMessageLike]:
        """Oldest unacknowledged messages with an id above `after_id` first."""
        ...

    def ack(self, ids: Sequence[int]) -> None:
        """Record the broker's acknowledgement of these messages."""
        ...

    def unpublish_all(self) -> int:
        """Put acknowledged but unconfirmed messages back in line for delivery."""
        ...


class MqttPublisher(ProtocolFallback):
    """Publishes outbox messages at QoS 1 in order, recording each PUBACK in the outbox.

    The broker being away never loses a reading: nothing leaves the outbox before the broker has
    acknowledged it, and readings stay until the archive confirms them (bus/outbox.py), so a crash
    or an outage only delays delivery (a message published but not confirmed before a crash is sent
    again: at-least-once, and ingest writes each (series, time) point idempotently). After every
    (re)connect what the broker acknowledged but nobody confirmed is published again, since a broker
    that restarted may have lost it. Telegraf's MQTT output reports success with the broker off (issue
    14750); this one reports `connected` and the outbox depth instead.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        outbox: OutboxLike,
        *,
        window: int = 100,
        refused_retry_s: tuple[float, float] = (REFUSED_RETRY_FIRST_S, REFUSED_RETRY_CAP_S),
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.window = window
        self.refused_retry_s = refused_retry_s  # (first delay, cap) before a refused message goes again
        self.yield_to: Callable[[], bool] = lambda: False  # True while work of a higher priority runs
        self.connected = asyncio.Event()
        self.published = 0
        self.acked = 0
        self.refused = 0  # PUBACKs with a failure reason code (MQTT 5), each retried later
        self.republished = 0  # acknowledged, unconfirmed messages put back in line after a (re)connect
        self._inflight: dict[int, tuple[int, str]] = {}  # paho mid -> (outbox id, topic)
        self._in_outbox_flight: set[int] = set()
        # Highest outbox id handed to paho: the drain reads on from there instead of re-reading the
        # messages in flight. Refused messages below it are retried from `_refused`.
        self._cursor = 0
        self._refused: dict[int, tuple[int, float]] = {}  # outbox id -> (refusals, monotonic retry time)
        self._refusal_log = RateLimit(60.0)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing is in flight
        self._idle.set()
        self._pending_acks: list[int] = []
        self._driver: MqttLoopDriver | None = None
        self._protocol = ProtocolChoice(settings)
        self._connacked = False  # per connection attempt: did the broker answer our CONNECT?
        self._switch: asyncio.Task[None] | None = None
        self._client = self._make_client()
        self._task: asyncio.Task[None] | None = None
        self._logged_down = False
        self._stopping = False
        # Sent on every (re)connect, before the outbox drains: retained (topic, payload) of the process.
        self._on_connect_announce: Callable[[], tuple[str, bytes]] | None = None
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}

    def _make_client(self) -> mqtt.Client:
        client = make_client(self.settings, self._protocol.current)
        # paho holds unacknowledged QoS 1 messages and resends them itself after a reconnect.
        client.max_inflight_messages_set(self.window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def announce_on_connect(self, message: Callable[[], tuple[str, bytes]]) -> None:
        """After every (re)connect, publish `message()` retained at QoS 1 straight away, not through the
        outbox: a process's `online` must follow the connect (and overwrite the will the broker just
        published) even with a long backlog queued."""
        self._on_connect_announce = message

    def subscribe(self, topic: str, handler: Callable[[str, bytes], None]) -> None:
        """Hand every message on `topic` (QoS 1) to `handler(topic, payload)` on the event loop;
        subscribed again after every reconnect."""
        self._subscriptions[topic] = handler

    def publish_now(self, topic: str, payload: bytes, *, retain: bool = False) -> mqtt.MQTTMessageInfo:
        """Publish at QoS 1 outside the outbox (not kept across a crash): process state, not readings."""
        return self._client.publish(topic, payload, qos=1, retain=retain)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        for topic, handler in self._subscriptions.items():
            if mqtt.topic_matches_sub(topic, msg.topic):
                handler(msg.topic, bytes(msg.payload))

    def _connect(self) -> None:
        s = self.settings
        self._connacked = False
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._drive("publisher")

    async def start(self) -> None:
        """Connect in the background and start draining the outbox."""
        self._connect()
        self._task = asyncio.create_task(self._drain(), name="mqtt-drain")

    def notify(self) -> None:
        """Tell the publisher that new messages are in the outbox."""
        self._wake.set()

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Wait a little for in-flight acknowledgements, then disconnect (the outbox keeps the rest)."""
        self._stopping = True
        if self._inflight and self.connected.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_timeout_s):
                    await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(5):  # never hang a shutdown on the drain task
                    await self._task
        if self._switch is not None:
            await self._switch
        await self._stop_driver()

    @property
    def inflight(self) -> int:
        """Messages published and not yet acknowledged."""
        return len(self._inflight)

    def rewind(self) -> None:
        """Read the outbox from its start again (messages were put back in line for delivery)."""
        self._cursor = 0
        self._wake.set()

    async def _drain(self) -> None:
        while not self._stopping:
            await self.connected.wait()
            room = min(self.window - len(self._inflight), PUBLISH_SLICE)
            if room > 0 and self._publish_some(room):
                # More may be waiting: let polls and acks run in between (and step back while polls run).
                await asyncio.sleep(BACKGROUND_PAUSE_S if self.yield_to() else 0)
                continue
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives just as the event fires, and stop() would then wait for this task forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await self._wake.wait()

    def _publish_some(self, room: int) -> bool:
        """Hand up to `room` due messages to paho; True if it did and more may be waiting."""
        due = self._due_refused(room)
        if due and not all(self._publish(m) for m in due):
            return False
        fresh = self.outbox.peek(room - len(due), after_id=self._cursor)
        for m in fresh:
            if m.id in self._in_outbox_flight or m.id in self._refused:
                # After a rewind the head of the outbox may still be in paho's hands (sent before a
                # reconnect, which paho resends itself): publishing it again would only duplicate it.
                # A refused message goes again when its retry time comes (_due_refused), not here.
                self._cursor = max(self._cursor, m.id)
            elif not self._publish(m):
                return False
        return bool(due or fresh)

    def _publish(self, m: OutboxMessageLike) -> bool:
        """Hand one message to paho; False if the drain should pause."""
        info = self._client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            _LOG.warning("publish of message %d failed: %s", m.id, mqtt.error_string(info.rc))
            return False
        # On NO_CONN (the connection dropped a moment ago) paho still keeps the message and sends it
        # after reconnecting, so it is in flight either way; publishing it again from the outbox would
        # only duplicate it.
        self._inflight[info.mid] = (m.id, m.topic)
        self._idle.clear()
        self._in_outbox_flight.add(m.id)
        self._cursor = max(self._cursor, m.id)
        self.published += 1
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _due_refused(self, room: int) -> list[OutboxMessageLike]:
        """Refused messages whose retry time has come (at most `room`), still in the outbox."""
        now = time.monotonic()
        due: list[OutboxMessageLike] = []
        for outbox_id, (_refusals, retry_at) in list(self._refused.items()):
            if len(due) >= room:
                break
            if retry_at > now or outbox_id in self._in_outbox_flight:
                continue
            found = self.outbox.peek(1, after_id=outbox_id - 1)
            if found and found[0].id == outbox_id:
                due.append(found[0])
            else:
                del self._refused[outbox_id]  # dropped by an outbox bound meanwhile
        return due

    # --- paho callbacks (on the event loop: bus/mqtt_loop.py) --------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self._connacked = True
        self._connected(rc)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        self._puback(mid, rc)

    # --- on the event loop ----------------------------------------------------------------------
    def _connected(self, rc: ReasonCode) -> None:
        if rc.is_failure:
            if self._fall_back(rc, connacked=True):
                return
            if not self._logged_down:
                _LOG.warning(
                    "MQTT broker %s:%d refused the connection: %s", self.settings.host, self.settings.port, rc
                )
                self._logged_down = True
            return
        if self._logged_down:
            _LOG.warning("MQTT broker %s:%d connected again", self.settings.host, self.settings.port)
        self._logged_down = False
        self._protocol.connected()
        if self._driver is not None:
            self._driver.connected()
        again = self.outbox.unpublish_all()
        if again:
            _LOG.info("publishing %d acknowledged but unconfirmed message(s) again after connecting", again)
        self.republished += again
        self._cursor = 0
        self.connected.set()
        if self._on_connect_announce is not None:
            topic, payload = self._on_connect_announce()
            self.publish_now(topic, payload, retain=True)
        for topic in self._subscriptions:
            self._client.subscribe(topic, qos=1)
        self._wake.set()

    def _disconnected(self, rc: ReasonCode, client: mqtt.Client, connacked: bool) -> None:
        if client is not self._client or self._fall_back(rc, connacked=connacked):
            return  # the old client of a protocol switch, or the closed MQTT 5 attempt that starts one
        self.connected.clear()
        if self._stopping:
            _LOG.debug("MQTT broker %s:%d: disconnected on stop", self.settings.host, self.settings.port)
            return
        if not self._logged_down:
            _LOG.warning(
                "MQTT broker %s:%d lost (%s); readings wait in the outbox",
                self.settings.host,
                self.settings.port,
                rc,
            )
            self._logged_down = True

    def _puback(self, mid: int, rc: ReasonCode) -> None:
        sent = self._inflight.pop(mid, None)
        if sent is None:
            return
        outbox_id, topic = sent
        if rc.is_failure:
            self._refusal(outbox_id, topic, rc)
            return
        # It stays marked in flight until the outbox has deleted it, or the drain loop would peek it
        # again in between and publish it twice.
        if not self._pending_acks:
            # Coalesce every PUBACK handled in this loop iteration into one outbox transaction.
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._pending_acks.append(outbox_id)

    def _refusal(self, outbox_id: int, topic: str, rc: ReasonCode) -> None:
        """The broker refused a message (not authorised, quota): keep it and retry it, paced.

        Retrying at once would spin: a topic the broker's ACL denies is refused every time. The retry
        waits 5 s, doubling per refusal up to 5 min, while the messages behind it keep flowing.
        """
        self._in_outbox_flight.discard(outbox_id)
        refusals = self._refused.get(outbox_id, (0, 0.0))[0] + 1
        first, cap = self.refused_retry_s
        delay = min(first * 2 ** (refusals - 1), cap)
        self._refused[outbox_id] = (refusals, time.monotonic() + delay)
        self.refused += 1
        ok, suppressed = self._refusal_log.allow()
        if ok:
            more = f" ({suppressed} more refusals since the last report)" if suppressed else ""
            _LOG.warning(
                "broker refused message %d on %s: %s; it stays in the outbox, retried in %g s%s",
                outbox_id,
                topic,
                rc,
                delay,
                more,
            )

    def _flush_acks(self) -> None:
        ids, self._pending_acks = self._pending_acks, []
        if ids:
            self.outbox.ack(ids)
            self.acked += len(ids)
            self._in_outbox_flight.difference_update(ids)
            if self._refused:
                for i in ids:
                    self._refused.pop(i, None)
        if not self._inflight:
            self._idle.set()
        self._wake.set()
