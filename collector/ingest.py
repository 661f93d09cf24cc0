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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.broker import BrokerSettings, ProtocolChoice, ProtocolFallback, make_client
from collector.broker import broker_settings as _broker_settings
from collector.config import SiteConfig
from collector.influx_writer import InfluxV1Writer, InfluxV2Writer, InfluxWriter
from collector.ingest_batch import Backoff, DeadLetterFile, IngestStats, RateLimit, SeqOutcome, SeqTracker
from collector.lineproto import LineEncoder
from collector.mqtt_loop import MqttLoopDriver
from collector.status_file import write_snapshot
from devices.wire import WireError, decode_poll

_LOG = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86_400
SHARED_GROUP = "roomguard-ingest"
STATUS_EVERY_S = 2.0


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Tunables of the bridge (defaults are the production values)."""

    topic_prefix: str = "roomguard/v1"
    shared_group: str | None = None
    batch_points: int = 5000
    batch_delay_s: float = 1.0
    # MQTT 5 Receive Maximum (≤ 65535): the broker's in-flight window toward us, and our backlog bound.
    receive_maximum: int = 10_000
    session_expiry_s: int = SESSION_EXPIRY_S
    backoff_first_s: float = 0.5
    backoff_cap_s: float = 30.0
    flush_timeout_s: float = 10.0

    @property
    def topic(self) -> str:
        """The subscription filter, shared (`$share/<group>/…`) if a group is set."""
        topic = f"{self.topic_prefix}/+/+/+/readings"
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
        self, broker: BrokerSettings, writer: InfluxWriter, settings: IngestSettings, dead_letter: Path
    ) -> None:
        self.broker = broker
        self.writer = writer
        self.settings = settings
        self.stats = IngestStats()
        self.dead_letter = DeadLetterFile(dead_letter)
        self.connected = asyncio.Event()
        self._queue: deque[Incoming] = deque()
        self._arrived = asyncio.Event()
        self._in_batch = 0
        self._stopping = False
        self._conn = 0  # incremented per successful connect
        self._encoder = LineEncoder()
        self._seq = SeqTracker()
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

    # --- paho callbacks (on the event loop: collector/mqtt_loop.py) --------------------------------
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
        _LOG.info("ingest connected to %s:%d, subscribed to %s", self.broker.host, self.broker.port,
                  self.settings.topic)

    def _disconnected(self, rc: ReasonCode, client: mqtt.Client, connacked: bool) -> None:
        if client is not self._client or self._fall_back(rc, connacked=connacked):
            return  # the old client of a protocol switch, or the closed MQTT 5 attempt that starts one
        if self.connected.is_set() and not self._stopping:
            _LOG.warning("ingest lost the MQTT broker (%s); unacked messages stay queued there", rc)
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

    def _decode(self, batch: list[Incoming]) -> list[str]:
        """Line-protocol lines of the good messages; malformed ones are counted and logged (rate-limited)."""
        lines: list[str] = []
        for msg in batch:
            try:
                poll, seq = decode_poll(msg.payload)
                ref = poll.ref
                levels = msg.topic.split("/")[-4:-1]
                if levels != [ref.site, ref.room, ref.device]:
                    raise WireError(f"payload device {ref.site}/{ref.room}/{ref.device} does not match "
                                    f"topic {msg.topic}")
                line = self._encoder.encode(poll)
            except (WireError, ValueError) as exc:
                self.stats.malformed += 1
                ok, suppressed = self._malformed_log.allow()
                if ok:
                    more = f" ({suppressed} more since the last report)" if suppressed else ""
                    _LOG.warning("rejected message on %s: %s%s", msg.topic, exc, more)
                continue
            self._track_seq((ref.site, ref.room, ref.device), seq)
            lines.append(line)
        return lines

    def _track_seq(self, key: tuple[str, str, str], seq: int) -> None:
        outcome, missing = self._seq.observe(key, seq)
        if outcome is SeqOutcome.DUPLICATE:
            self.stats.duplicates += 1
        elif outcome is SeqOutcome.RESTART:
            self.stats.restarts += 1
            _LOG.warning("sequence restart for %s: now at %d (a new collector outbox)", "/".join(key), seq)
        elif outcome is SeqOutcome.GAP:
            self.stats.gaps += 1
            self.stats.missing += missing
            # With a shared subscription each instance sees a share of every device: gaps are expected.
            ok, suppressed = self._gap_log.allow()
            if ok and not self.settings.shared_group:
                more = f" ({suppressed} more gaps since the last report)" if suppressed else ""
                _LOG.warning("sequence gap for %s: %d message(s) missing before seq %d%s",
                             "/".join(key), missing, seq, more)

    async def _process(
        self, batch: list[Incoming], stop: asyncio.Event, deadline: float | None = None
    ) -> None:
        """Write one batch until accepted or rejected (retrying with backoff), then ack it in order."""
        lines = self._decode(batch)
        self._in_batch = len(batch)
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
                self.stats.db_state, self.stats.db_error = "ok", None
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
            self.stats.db_state, self.stats.db_error = "retrying", f"HTTP {result.status}: {result.reason}"
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
        self._ack(batch)
        self._in_batch = 0
        self.stats.backlog = self.backlog

    def _ack(self, batch: list[Incoming]) -> None:
        # Only messages of the current connection: after a reconnect the broker sends the unacked ones
        # again under packet ids that may by now belong to other messages, so an old id must not be acked.
        if not self.connected.is_set():
            return  # the broker delivers them again on the next connection
        done: set[int] = set()
        for msg in batch:
            if msg.qos > 0 and msg.conn == self._conn and msg.mid not in done:
                done.add(msg.mid)
                self._client.ack(msg.mid, msg.qos)


def broker_settings(site: SiteConfig, client_index: int = 0) -> BrokerSettings:
    """Connection settings of ingest process number `client_index` for this site (docs/mqtt.md ids)."""
    return _broker_settings(site, f"roomguard-ingest-{site.site.id}-{client_index}")


def make_writer(site: SiteConfig) -> InfluxWriter:
    """The InfluxDB writer of `site.influxdb` (v1 `/write` or v2 API)."""
    db = site.influxdb
    if db is None:
        raise ValueError("the site configuration has no influxdb section; ingest has nowhere to write")
    if db.api == "v1":
        assert db.database is not None  # the config validator requires it for api v1
        password = db.password.resolve() if db.password is not None else None
        return InfluxV1Writer(db.url, db.database, db.username, password, gzip=db.gzip)
    assert db.bucket is not None
    token = db.token.resolve() if db.token else ""
    return InfluxV2Writer(db.url, db.bucket, db.org or "", token, gzip=db.gzip)


async def run_ingest(
    site: SiteConfig,
    state_dir: Path,
    stop: asyncio.Event,
    *,
    client_index: int = 0,
    shared_group: str | None = None,
) -> None:
    """Run the ingest bridge of `site` until `stop` is set, writing a status snapshot every 2 s."""
    settings = IngestSettings(topic_prefix=site.mqtt.topic_prefix, shared_group=shared_group)
    bridge = IngestBridge(
        broker_settings(site, client_index), make_writer(site), settings, state_dir / "dead-letter.jsonl"
    )
    status = asyncio.create_task(_write_status(bridge, state_dir, stop), name="ingest-status")
    try:
        await bridge.run(stop)
    finally:
        status.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await status
        write_snapshot(state_dir, "ingest", bridge.stats.as_dict())


async def _write_status(bridge: IngestBridge, state_dir: Path, stop: asyncio.Event) -> None:
    while not stop.is_set():
        bridge.stats.backlog = bridge.backlog
        try:
            write_snapshot(state_dir, "ingest", bridge.stats.as_dict())
        except OSError as exc:  # a full disk must not stop the data path
            _LOG.warning("cannot write the ingest status snapshot: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)


__all__ = ["IngestBridge", "IngestSettings", "broker_settings", "make_writer", "run_ingest"]
