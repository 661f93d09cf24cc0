"""`roomguard ingest`: MQTT readings → InfluxDB, acknowledging a message only after its batch was stored.

Delivery: a persistent MQTT 5 session (fixed client id, clean start off, session expiry) — or with MQTT
3.1.1 (configured, or "auto" against a broker without MQTT 5) clean_session off — with QoS 1 and paho's
manual ack. A message is acked (PUBACK) only once the InfluxDB batch holding it was accepted — or
dead-lettered — so a crash or a database outage leaves it with the broker, which delivers it again
(at least once; the same series and timestamp overwrite themselves in InfluxDB).

Flow control: mosquitto sends at most N unacknowledged QoS 1 messages to a client. For an MQTT 5 client
N is the client's CONNECT Receive Maximum (mosquitto 2.0.11 then ignores `max_inflight_messages`, which
only applies to MQTT 3.1.1 clients; default 20). We set Receive Maximum to about two batches, so a batch
can fill while the previous one is written, and the same number bounds what we hold in memory while the
database is away: the rest waits in the broker's queue (`max_queued_messages`, see
deploy/mosquitto/roomguard.conf).

InfluxDB 1.x partial writes ("partial write: field type conflict … dropped=N", HTTP 400): the valid
points of the batch are already stored; the whole batch goes to the dead-letter file anyway (re-importing
it is idempotent), with the server's reason naming the dropped points.

Hostile or broken messages (ingest/admit.py) are dead-lettered with the reason and acked.
Confirmations: once a batch is stored (or dead-lettered), ingest publishes per site the seq ranges of
every device it covered on `{prefix}/{site}/_ingest/{client id}/confirmed`; the collector keeps each
reading in its outbox until then, so a broker that crashes before saving what it acknowledged loses
nothing. Sequence state and counters persist in `state_dir/ingest.db` (ingest/seq.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bus.backoff import Backoff, RateLimit
from bus.broker import BrokerSettings, ProtocolChoice, ProtocolFallback, make_client
from bus.mqtt_loop import MqttLoopDriver
from devices.wire import encode_confirm, seq_ranges, topic_confirm
from ingest.admit import Accepted, AdmissionRules, Key, Rejected, admit
from ingest.batch import DeadLetterFile, IngestStats
from ingest.influx_writer import InfluxWriter
from ingest.lineproto import LineEncoder
from ingest.seq import SeqOutcome, SeqStateFile, SeqTracker

_LOG = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86_400
SHARED_GROUP = "roomguard-ingest"
# Longest stretch of decoding (or acking) between two event-loop turns: a batch of thousands of messages
# (a genset's carries 124 metrics) must not hold the loop that, in `roomguard run`, also polls devices.
WORK_SLICE_S = 0.02


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Tunables of the bridge (defaults are the production values)."""

    topic_prefix: str = "roomguard/v1"
    site: str | None = None  # read this site's readings only (None: every site, a central ingest)
    shared_group: str | None = None
    batch_points: int = 5000
    batch_delay_s: float = 1.0
    # MQTT 5 Receive Maximum (≤ 65535): the broker's in-flight window toward us, and our backlog bound.
    receive_maximum: int = 10_000
    session_expiry_s: int = SESSION_EXPIRY_S
    backoff_first_s: float = 0.5
    backoff_cap_s: float = 3.0
    flush_timeout_s: float = 10.0
    admission: AdmissionRules = field(default_factory=AdmissionRules)
    confirm: bool = True  # publish what was stored back to the collectors (their outboxes wait for it)

    @property
    def topic(self) -> str:
        """The subscription filter, shared (`$share/<group>/…`) if a group is set."""
        topic = f"{self.topic_prefix}/{self.site or '+'}/+/+/readings"
        return f"$share/{self.shared_group}/{topic}" if self.shared_group else topic


@dataclass(frozen=True, slots=True)
class Incoming:
    """One received MQTT message; `conn` numbers the connection it came on."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    conn: int


class IngestBridge(ProtocolFallback):
    """Consumes readings from MQTT, writes them in batches, acks them after the write."""

    def __init__(
        self, broker: BrokerSettings, writer: InfluxWriter, settings: IngestSettings, dead_letter: Path,
        state: SeqStateFile | None = None,
    ) -> None:
        self.broker = broker
        self.writer = writer
        self.settings = settings
        self.stats = IngestStats()
        self.dead_letter = DeadLetterFile(dead_letter)
        self._seq = SeqTracker(track_holes=settings.shared_group is None)
        self._state = state
        if state is not None:
            self.stats.restore(state.load(self._seq))
            self.stats.missing = self._seq.missing
        self.connected = asyncio.Event()
        self._queue: deque[Incoming] = deque()
        self._arrived = asyncio.Event()
        self._in_batch = 0
        self._stopping = False
        self._conn = 0  # incremented per successful connect
        self._encoder = LineEncoder()
        self._malformed_log = RateLimit(10.0)
        self._gap_log = RateLimit(10.0)
        self._reject_log = RateLimit(60.0)
        self._driver: MqttLoopDriver | None = None
        self._protocol = ProtocolChoice(broker)
        self._connacked = False  # per connection attempt: did the broker answer our CONNECT?
        self._switch: asyncio.Task[None] | None = None
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        v5 = self._protocol.current == "5"
        # PUBACK only when we call ack(), i.e. after the database accepted. MQTT 3.1.1 keeps the session
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
            self._client.connect_async(b.host, b.port, keepalive=b.keepalive_s, clean_start=False,
                                       properties=self._connect_properties())
        else:
            # No Receive Maximum in 3.1.1: the broker's max_inflight_messages bounds unacked messages.
            self._client.connect_async(b.host, b.port, keepalive=b.keepalive_s)
        self._drive("ingest")

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        # Without an expiry an MQTT 5 session ends with its connection, clean start or not (spec 3.1.2.11.2)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = max(1, min(self.settings.receive_maximum, 65_535))
        return props

    # --- paho callbacks (on the event loop: bus/mqtt_loop.py) --------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self._connacked = True
        if not rc.is_failure:
            # Subscribing again on every connect is harmless with a kept session and needed without one.
            client.subscribe(self.settings.topic, qos=1)
        self._connected(rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Messages of a connection arrive after its CONNACK was handled, so _conn is the right one.
        self._queue.append(Incoming(msg.mid, msg.qos, msg.topic, bytes(msg.payload), self._conn))
        self.stats.received += 1
        # Wake the batcher only when it has something to do: a first message, or a full batch.
        queued = len(self._queue)
        if queued == 1 or queued >= self.settings.batch_points:
            self._arrived.set()

    # --- on the event loop ----------------------------------------------------------------------
    def _connected(self, rc: ReasonCode) -> None:
        if rc.is_failure:
            if self._fall_back(rc, connacked=True):
                return
            _LOG.warning("MQTT broker %s:%d refused ingest: %s", self.broker.host, self.broker.port, rc)
            return
        self._conn += 1
        self._protocol.connected()
        if self._driver is not None:
            self._driver.connected()
        self.connected.set()
        self.stats.broker_connected = True
        self.stats.broker_since = datetime.now(UTC).isoformat()
        _LOG.info("ingest connected to %s:%d, subscribed to %s", self.broker.host, self.broker.port,
                  self.settings.topic)

    def _disconnected(self, rc: ReasonCode, client: mqtt.Client, connacked: bool) -> None:
        if client is not self._client or self._fall_back(rc, connacked=connacked):
            return  # the old client of a protocol switch, or the closed MQTT 5 attempt that starts one
        if self.connected.is_set() and not self._stopping:
            _LOG.warning("ingest lost the MQTT broker (%s); unacked messages stay queued there", rc)
        if self.stats.broker_connected:
            self.stats.broker_since = datetime.now(UTC).isoformat()
        self.connected.clear()
        self.stats.broker_connected = False

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, then batch, write and ack until `stop` is set; the current batch is flushed."""
        self._connect()
        try:
            while not stop.is_set():
                batch = await self._collect(stop)
                if batch:
                    await self._process(batch, stop)
            # Graceful stop: write what was already received (bounded by the flush timeout); whatever is
            # not accepted stays unacked and comes back from the broker.
            deadline = time.monotonic() + self.settings.flush_timeout_s
            while self._queue and time.monotonic() < deadline:
                await self._process(self._take(), stop, deadline=deadline)
        finally:
            self._stopping = True
            if self._switch is not None:
                await self._switch
            await self._stop_driver()
            await self.writer.close()

    @property
    def backlog(self) -> int:
        """Messages received and not yet acked (queued plus the batch being written)."""
        return len(self._queue) + self._in_batch

    def _take(self) -> list[Incoming]:
        n = min(len(self._queue), self.settings.batch_points)
        return [self._queue.popleft() for _ in range(n)]

    async def _collect(self, stop: asyncio.Event) -> list[Incoming]:
        """Wait for a first message, then up to batch_delay_s or batch_points, whichever comes first."""
        waiter = asyncio.create_task(stop.wait())
        try:
            while not self._queue and not stop.is_set():
                self._arrived.clear()
                arrived = asyncio.create_task(self._arrived.wait())
                await asyncio.wait({waiter, arrived}, return_when=asyncio.FIRST_COMPLETED)
                arrived.cancel()
            deadline = time.monotonic() + self.settings.batch_delay_s
            while len(self._queue) < self.settings.batch_points and not stop.is_set():
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

    async def _decode(self, batch: list[Incoming]) -> tuple[list[str], list[tuple[Key, int]]]:
        """Lines of the admitted messages and every (device, seq) to confirm; refused ones dead-lettered."""
        lines: list[str] = []
        done: list[tuple[Key, int]] = []
        now = datetime.now(UTC)
        turn = time.perf_counter()
        for msg in batch:
            if time.perf_counter() - turn > WORK_SLICE_S:
                await asyncio.sleep(0)
                turn = time.perf_counter()
            result = admit(msg.topic, msg.payload, self.settings.admission, self._encoder, now)
            if isinstance(result, Rejected):
                self._refuse(msg, result)
                if result.key is not None and result.seq is not None:
                    done.append((result.key, result.seq))  # kept in the dead-letter file: confirmed
                continue
            assert isinstance(result, Accepted)
            self._track_seq(result.key, result.seq, result.epoch)
            lines.append(result.line)
            done.append((result.key, result.seq))
        self.stats.missing = self._seq.missing if self._seq.track_holes else 0
        return lines, done

    def _refuse(self, msg: Incoming, why: Rejected) -> None:
        """Dead-letter a message that is not written, count it and log it (rate-limited)."""
        try:
            self.dead_letter.append_message(msg.topic, msg.payload, why.reason)
        except OSError as exc:  # a full disk must not stop the data path; the log still has the reason
            _LOG.error("cannot write the dead-letter file %s: %s", self.dead_letter.path, exc)
        if why.key is None:
            self.stats.malformed += 1
        else:
            self.stats.rejected += 1
        ok, suppressed = self._malformed_log.allow()
        if ok:
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            _LOG.warning("rejected message on %s: %s; kept in %s%s", msg.topic[:200], why.reason,
                         self.dead_letter.path, more)

    def _track_seq(self, key: Key, seq: int, epoch: str | None) -> None:
        outcome, missing = self._seq.observe(key, seq, epoch)
        if outcome is SeqOutcome.DUPLICATE:
            self.stats.duplicates += 1
        elif outcome is SeqOutcome.FILLED:
            self.stats.filled += 1
        elif outcome is SeqOutcome.RESTART:
            self.stats.restarts += 1
            _LOG.warning("sequence restart for %s: now at %d (a new collector outbox)", "/".join(key), seq)
        elif outcome is SeqOutcome.GAP:
            self.stats.gaps += 1
            # With a shared subscription each instance sees a share of every device: gaps are expected.
            ok, suppressed = self._gap_log.allow()
            if ok and not self.settings.shared_group:
                more = f" ({suppressed} more gaps since the last report)" if suppressed else ""
                _LOG.warning("sequence gap for %s: %d message(s) missing before seq %d%s",
                             "/".join(key), missing, seq, more)

    async def _process(
        self, batch: list[Incoming], stop: asyncio.Event, deadline: float | None = None
    ) -> None:
        """Write one batch until accepted or rejected (retrying with backoff), then ack and confirm it."""
        self._in_batch = len(batch)
        lines, done = await self._decode(batch)
        backoff = Backoff(self.settings.backoff_first_s, self.settings.backoff_cap_s)
        while lines:
            self.stats.backlog = self.backlog
            result = await self.writer.write(lines)
            if result.accepted:
                self.stats.written_points += len(lines)
                self.stats.batches += 1
                self.stats.last_write_ts = datetime.now(UTC).isoformat()
                if self.stats.db_state != "ok":
                    _LOG.warning("database accepts writes again")
                    self._db_state("ok", None)
                break
            if result.rejected:
                self.dead_letter.append(lines, result.reason, result.status)
                self.stats.dead_lettered += len(lines)
                ok, suppressed = self._reject_log.allow()
                if ok:
                    more = f"; {suppressed} more rejected batches since the last report" if suppressed else ""
                    _LOG.error("database rejected a batch of %d points (HTTP %s: %s); written to %s%s",
                               len(lines), result.status, result.reason[:300], self.dead_letter.path, more)
                break
            self._db_state("retrying", f"HTTP {result.status}: {result.reason}")
            delay = backoff.next_delay()
            if deadline is None and stop.is_set():
                # Shutting down while the database is away: keep trying only until the flush deadline.
                deadline = time.monotonic() + self.settings.flush_timeout_s
            if deadline is not None:
                delay = min(delay, deadline - time.monotonic())
                if delay <= 0:
                    return  # not acked: the broker keeps these messages for the next start
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)  # a stop ends the wait early
        if self._state is not None:
            # Before the ack: a crash after it must not lose the holes and counters of this batch.
            self._state.save(self._seq, self.stats.counters())
        await self._ack(batch)
        self._confirm(done)
        self._in_batch = 0
        self.stats.backlog = self.backlog

    def _db_state(self, state: str, error: str | None) -> None:
        if state != self.stats.db_state:
            self.stats.db_state_since = datetime.now(UTC).isoformat()
        self.stats.db_state, self.stats.db_error = state, error

    def _confirm(self, done: list[tuple[Key, int]]) -> None:
        """Tell each site's collectors which readings are now stored (their outboxes drop them)."""
        if not self.settings.confirm or not done:
            return
        by_site: dict[str, dict[str, list[int]]] = {}
        for (site, room, device), seq in done:
            by_site.setdefault(site, {}).setdefault(f"{room}/{device}", []).append(seq)
        now = datetime.now(UTC)
        for site, streams in by_site.items():
            try:
                topic = topic_confirm(self.settings.topic_prefix, site, self.broker.client_id)
                payload = encode_confirm(now, site, {k: seq_ranges(v) for k, v in streams.items()})
            except ValueError as exc:  # a site id that cannot be a topic level came off the bus
                _LOG.warning("cannot confirm readings of site %r: %s", site[:100], exc)
                continue
            # QoS 1; while disconnected paho keeps it and sends it after the reconnect. A confirmation
            # that is lost anyway only makes the collector publish those readings once more.
            self._client.publish(topic, payload, qos=1)
            self.stats.confirmed += len(done)

    async def _ack(self, batch: list[Incoming]) -> None:
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


__all__ = ["IngestBridge", "IngestSettings"]
