"""`roomguard ingest`: MQTT readings → InfluxDB, acknowledging a message only after its batch was stored.

Messages come through the durable consumer (bus/consumer.py: persistent session, QoS 1, manual ack,
Receive Maximum as the backlog bound); the bridge is its batch handler. A batch is done — and acked —
once InfluxDB accepted it or it was dead-lettered, so a crash or a database outage leaves it with the
broker, which delivers it again (at least once; the same series and timestamp overwrite themselves).

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bus.backoff import Backoff, RateLimit
from bus.broker import BrokerSettings, Protocol
from bus.consumer import SESSION_EXPIRY_S, WORK_SLICE_S, ConsumerSettings, DurableConsumer, Message
from devices.wire import encode_confirm, seq_ranges, topic_confirm
from ingest.admit import AdmissionRules, Key, Rejected, admit
from ingest.batch import DeadLetterFile, IngestStats
from ingest.influx_writer import InfluxWriter
from ingest.lineproto import LineEncoder
from ingest.seq import SeqOutcome, SeqStateFile, SeqTracker

_LOG = logging.getLogger(__name__)

SHARED_GROUP = "roomguard-ingest"


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
        return self.consumer().subscription

    def consumer(self) -> ConsumerSettings:
        """The durable consumer's settings: readings of one site (or all), batched for the database."""
        return ConsumerSettings(
            topic=f"{self.topic_prefix}/{self.site or '+'}/+/+/readings",
            shared_group=self.shared_group,
            batch_size=self.batch_points,
            batch_delay_s=self.batch_delay_s,
            receive_maximum=self.receive_maximum,
            session_expiry_s=self.session_expiry_s,
            flush_timeout_s=self.flush_timeout_s,
        )


class IngestBridge:
    """The durable consumer's handler: decodes a batch of readings, writes it, confirms it."""

    def __init__(
        self,
        broker: BrokerSettings,
        writer: InfluxWriter,
        settings: IngestSettings,
        dead_letter: Path,
        state: SeqStateFile | None = None,
    ) -> None:
        self.broker = broker
        self.writer = writer
        self.settings = settings
        self.consumer = DurableConsumer(broker, settings.consumer(), name="ingest")
        self._stats = IngestStats()
        self.dead_letter = DeadLetterFile(dead_letter)
        self._seq = SeqTracker(track_holes=settings.shared_group is None)
        self._state = state
        if state is not None:
            self._stats.restore(state.load(self._seq))
            self._stats.missing = self._seq.missing
        self._encoder = LineEncoder()
        self._malformed_log = RateLimit(10.0)
        self._gap_log = RateLimit(10.0)
        self._reject_log = RateLimit(60.0)

    @property
    def stats(self) -> IngestStats:
        """Counters and state, the consumer's connection and backlog included (current as of now)."""
        s = self._stats
        s.received = self.consumer.received
        s.broker_connected = self.consumer.state.connected
        s.broker_since = self.consumer.state.since
        s.backlog = self.consumer.backlog
        return s

    @property
    def connected(self) -> asyncio.Event:
        """Set while the consumer is connected to the broker."""
        return self.consumer.connected

    @property
    def protocol(self) -> Protocol:
        """The MQTT version in use ("5" or "3.1.1")."""
        return self.consumer.protocol

    @property
    def backlog(self) -> int:
        """Messages received and not yet acked (queued plus the batch being written)."""
        return self.consumer.backlog

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, write and ack until `stop` is set; what was received is written last."""
        try:
            await self.consumer.run(self._process, stop)
        finally:
            await self.writer.close()

    async def _decode(self, batch: list[Message]) -> tuple[list[str], list[tuple[Key, int]]]:
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
            self._track_seq(result.key, result.seq, result.epoch)
            lines.append(result.line)
            done.append((result.key, result.seq))
        self._stats.missing = self._seq.missing if self._seq.track_holes else 0
        return lines, done

    def _refuse(self, msg: Message, why: Rejected) -> None:
        """Dead-letter a message that is not written, count it and log it (rate-limited)."""
        try:
            self.dead_letter.append_message(msg.topic, msg.payload, why.reason)
        except OSError as exc:  # a full disk must not stop the data path; the log still has the reason
            _LOG.error("cannot write the dead-letter file %s: %s", self.dead_letter.path, exc)
        if why.key is None:
            self._stats.malformed += 1
        else:
            self._stats.rejected += 1
        ok, suppressed = self._malformed_log.allow()
        if ok:
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            _LOG.warning(
                "rejected message on %s: %s; kept in %s%s",
                msg.topic[:200],
                why.reason,
                self.dead_letter.path,
                more,
            )

    def _track_seq(self, key: Key, seq: int, epoch: str | None) -> None:
        outcome, missing = self._seq.observe(key, seq, epoch)
        if outcome is SeqOutcome.DUPLICATE:
            self._stats.duplicates += 1
        elif outcome is SeqOutcome.FILLED:
            self._stats.filled += 1
        elif outcome is SeqOutcome.RESTART:
            self._stats.restarts += 1
            _LOG.warning("sequence restart for %s: now at %d (a new collector outbox)", "/".join(key), seq)
        elif outcome is SeqOutcome.GAP:
            self._stats.gaps += 1
            # With a shared subscription each instance sees a share of every device: gaps are expected.
            ok, suppressed = self._gap_log.allow()
            if ok and not self.settings.shared_group:
                more = f" ({suppressed} more gaps since the last report)" if suppressed else ""
                _LOG.warning(
                    "sequence gap for %s: %d message(s) missing before seq %d%s",
                    "/".join(key),
                    missing,
                    seq,
                    more,
                )

    async def _process(self, batch: list[Message], stop: asyncio.Event, deadline: float | None) -> bool:
        """Write one batch until accepted or rejected (retrying with backoff); True once it may be acked."""
        lines, done = await self._decode(batch)
        backoff = Backoff(self.settings.backoff_first_s, self.settings.backoff_cap_s)
        while lines:
            result = await self.writer.write(lines)
            if result.accepted:
                self._stats.written_points += len(lines)
                self._stats.batches += 1
                self._stats.last_write_ts = datetime.now(UTC).isoformat()
                if self._stats.db_state != "ok":
                    _LOG.warning("database accepts writes again")
                    self._db_state("ok", None)
                break
            if result.rejected:
                self.dead_letter.append(lines, result.reason, result.status)
                self._stats.dead_lettered += len(lines)
                ok, suppressed = self._reject_log.allow()
                if ok:
                    more = f"; {suppressed} more rejected batches since the last report" if suppressed else ""
                    _LOG.error(
                        "database rejected a batch of %d points (HTTP %s: %s); written to %s%s",
                        len(lines),
                        result.status,
                        result.reason[:300],
                        self.dead_letter.path,
                        more,
                    )
                break
            self._db_state("retrying", f"HTTP {result.status}: {result.reason}")
            delay = backoff.next_delay()
            if deadline is None and stop.is_set():
                # Shutting down while the database is away: keep trying only until the flush deadline.
                deadline = time.monotonic() + self.settings.flush_timeout_s
            if deadline is not None:
                delay = min(delay, deadline - time.monotonic())
                if delay <= 0:
                    return False  # not acked: the broker keeps these messages for the next start
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()  # a stop ends the wait early
        if self._state is not None:
            # Before the ack: a crash after it must not lose the holes and counters of this batch.
            self._state.save(self._seq, self._stats.counters())
        # Confirmed just before the consumer acks (both queued on the same connection, in this order): a
        # crash in between only makes the broker deliver the batch again, which rewrites the same points.
        self._confirm(done)
        return True

    def _db_state(self, state: str, error: str | None) -> None:
        if state != self._stats.db_state:
            self._stats.db_state_since = datetime.now(UTC).isoformat()
        self._stats.db_state, self._stats.db_error = state, error

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
            self.consumer.publish(topic, payload, qos=1)
            self._stats.confirmed += len(done)


__all__ = ["IngestBridge", "IngestSettings"]
