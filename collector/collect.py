"""The collector process: poll the site, store every message in the durable outbox, drain it to MQTT.

Data path: Poller → sink (encode with a per-device seq) → Outbox (SQLite, `state_dir/outbox.db`) →
CollectorPublisher (collector/collect_publisher.py). A reading leaves the outbox when ingest confirms it
is in the database; other messages on PUBACK. Besides readings it publishes retained per-device status
on reachability changes, trap and door events, its own connection status (online at connect, last will
`offline`, `offline`/`shutdown` on a clean stop), self-metrics every 10 s and a status snapshot
(`state_dir/collector.json`) every 2 s for `roomguard status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bus.broker import broker_settings
from bus.outbox import Outbox, Pending
from bus.state_dir import prepare_state_dir
from bus.status_file import process_identity, write_snapshot
from collector.collect_publisher import CollectorPublisher
from collector.collect_seq import SeqStore
from collector.poller import Poller
from collector.targets import TargetBuilder
from collector.trap_listen import trap_receiver, trap_sender
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality, Value
from devices.registry import ProfileRegistry
from devices.traps import TrapEvent
from devices.wire import (
    COLLECTOR_DEVICE_PREFIX,
    DeviceStatus,
    WireEvent,
    encode_event,
    encode_poll,
    encode_status,
    topic_collector_status,
    topic_confirm_filter,
    topic_events,
    topic_readings,
    topic_status,
)
from siteconfig.config import SiteConfig

_LOG = logging.getLogger(__name__)
WILL_REASON = "collector connection lost (last will)"
# A batch that cannot be stored (disk full, I/O error) is kept in memory and retried; beyond this many
# messages the oldest are dropped (counted and logged) so a dead disk cannot exhaust memory too.
_MAX_UNSTORED = 50_000
LOST_CHECK_EVERY_S = 2.0


def default_collector_id() -> str:
    """The host name, made safe as an MQTT topic level."""
    return re.sub(r"[/+#\s\x00]", "-", socket.gethostname()) or "collector"


class Collector:
    """Turns poll results, traps and its own health into outbox messages; see the module docstring."""

    def __init__(
        self, site: SiteConfig, state_dir: Path, collector_id: str, *, metrics_room: str | None = None
    ) -> None:
        """Open the outbox and the seq store under `state_dir` (OutboxLocked if another collector runs)."""
        self.site = site
        self.state_dir = state_dir
        self.collector_id = collector_id
        self.prefix = site.mqtt.topic_prefix
        targets = TargetBuilder(site, ProfileRegistry.builtin()).targets()
        prepare_state_dir(state_dir)
        ob = site.outbox
        self.outbox = Outbox(
            state_dir / "outbox.db",
            ob.max_bytes,
            ob.max_age_s,
            synchronous=ob.synchronous,
            release=ob.release,
        )
        self.seq = SeqStore(state_dir / "seq.db")
        # A crash between the outbox commit and the seq commit would hand out stored seqs again, and a
        # confirmation of one would then delete the other: continue above what the outbox holds.
        self.seq.at_least({stream: top + 1 for stream, top in self.outbox.max_seqs().items()})
        self.status_topic = topic_collector_status(self.prefix, site.site.id, collector_id)
        will = encode_status(DeviceStatus("offline", datetime.now(UTC), WILL_REASON))
        self.publisher = CollectorPublisher(
            broker_settings(
                site,
                site.mqtt.client_id or f"roomguard-collector-{site.site.id}-{collector_id}",
                (self.status_topic, will),
                role="collector",
            ),
            self.outbox,
            self.status_topic,
            topic_confirm_filter(self.prefix, site.site.id),
            site.site.id,
        )
        self.self_ref = DeviceRef(
            site=site.site.id,
            room=metrics_room or site.rooms[0].id,
            device=f"{COLLECTOR_DEVICE_PREFIX}{collector_id}",
            device_class=DeviceClass.SYSTEM,
            model="roomguard-collector",
        )
        self.rooms = {t.ref.device: t.ref.room for t in targets}
        self.poller = Poller(
            targets, self.sink, jitter_pct=site.defaults.jitter_pct, backoff_max_s=site.defaults.backoff_max_s
        )
        # Polls come first: publishing and confirmations step back while a poll is under way.
        self.publisher.yield_to = lambda: self.poller.busy
        self._flush_scheduled = False
        self._polls: list[PollResult] = []
        self._others: list[Pending] = []
        self._online: dict[str, tuple[bool, Quality]] = {}
        self._door: dict[str, Value] = {}
        self.unstored_dropped = 0
        self.traps = trap_receiver(site, self.on_trap)  # started by run(); None without snmp_traps

    # -- into the outbox ---------------------------------------------------------------------------

    async def sink(self, result: PollResult) -> None:
        """Poller sink: queue the result; every result of one loop iteration goes in one transaction."""
        self._queue(poll=result)

    def _queue(self, *, poll: PollResult | None = None, other: Pending | None = None) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        if poll is not None:
            self._polls.append(poll)
        if other is not None:
            self._others.append(other)

    def flush(self) -> None:
        """Encode queued results with their seq, store them with `put_many`, then persist the seqs."""
        self._flush_scheduled = False
        polls, others = self._polls, self._others
        if not polls and not others:
            return
        online, door = dict(self._online), dict(self._door)
        messages: list[Pending] = []
        updates: dict[str, int] = {}
        for r in polls:
            key = f"{r.ref.room}/{r.ref.device}"
            seq = updates.get(key, self.seq.peek(key))
            messages.append(
                Pending(
                    topic_readings(self.prefix, r.ref.site, r.ref.room, r.ref.device),
                    encode_poll(r, seq, self.seq.epoch),
                    stream=key,
                    seq=seq,
                )
            )
            updates[key] = seq + 1
            messages += self._status_change(r) + self._door_event(r)
        messages += others
        try:
            self._store(messages)
        except Exception:
            _LOG.exception(
                "cannot store %d message(s) in the outbox; retrying with the next batch", len(messages)
            )
            # Keep the queues and undo the state changes: the retry re-derives the same status and door
            # messages, and reuses the same seqs (they were not committed).
            self._online, self._door = online, door
            excess = len(polls) + len(others) - _MAX_UNSTORED
            if excess > 0:
                self.unstored_dropped += excess
                _LOG.error("dropping %d unstored message(s): the outbox has failed for too long", excess)
                self._polls = polls[min(excess, len(polls)) :]
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_later(1.0, self.flush)
            return
        self._polls, self._others = [], []
        self.seq.commit(updates)  # crash window before this line: see collector/collect_seq.py
        self.publisher.notify()

    def _store(self, messages: list[Pending]) -> None:
        limit = self.site.mqtt.max_message_bytes
        if any(len(m.payload) > limit for m in messages):
            # The broker would refuse it and drop our connection, again at every retry: never store it.
            for m in messages:
                if len(m.payload) > limit:
                    self.unstored_dropped += 1
                    _LOG.error(
                        "message on %s is %d bytes, over mqtt.max_message_bytes (%d); dropped",
                        m.topic,
                        len(m.payload),
                        limit,
                    )
            messages = [m for m in messages if len(m.payload) <= limit]
        try:
            self.outbox.put_many(messages)
        except ValueError:
            # The batch alone is larger than the byte bound (a tiny bound): store message by message,
            # each put then drops older ones as the bound demands.
            for m in messages:
                try:
                    self.outbox.put_many([m])
                except ValueError:
                    self.unstored_dropped += 1
                    _LOG.error("message on %s is larger than the outbox bound; dropped", m.topic)

    def _status_change(self, r: PollResult) -> list[Pending]:
        # `online` means the device reports data: a full answer, or a partial one (the quality says so).
        # Reachable but with nothing to report (every metric unavailable) is `offline` with the reason.
        online = r.quality in (Quality.GOOD, Quality.PARTIAL)
        if r.ref is self.self_ref or self._online.get(r.ref.device) == (online, r.quality):
            return []
        self._online[r.ref.device] = (online, r.quality)
        status = DeviceStatus("online" if online else "offline", r.ts, r.error, r.quality.value)
        topic = topic_status(self.prefix, r.ref.site, r.ref.room, r.ref.device)
        return [Pending(topic, encode_status(status), 1, True)]

    def _door_event(self, r: PollResult) -> list[Pending]:
        state = next((m.value for m in r.metrics if m.name == "door_state" and m.value is not None), None)
        if state is None or self._door.get(r.ref.device) == state:
            return []
        first = r.ref.device not in self._door
        self._door[r.ref.device] = state
        if first and state == "closed":
            return []  # a closed door at start-up is not an event
        event = WireEvent(
            r.ts,
            r.ref.site,
            "door",
            str(state),
            room=r.ref.room,
            device=r.ref.device,
            fields={"door_state": state},
        )
        return [Pending(topic_events(self.prefix, r.ref.site), encode_event(event))]

    def on_trap(self, event: TrapEvent) -> None:
        """Trap receiver callback: publish the trap on the events topic (and feed door trackers)."""
        device = trap_sender(self.site, event)
        if device is not None and event.event.get("access_granted") is True:
            self.poller.note_access_granted(device, event.ts)
        # The decoded fields, and by OID every varbind none is decoded from (all of an unknown trap's).
        fields: dict[str, Value] = {
            **{k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in event.carried.items()},
            **event.event,
        }
        wire = WireEvent(
            event.ts,
            self.site.site.id,
            "trap",
            event.name or event.trap_oid,
            room=self.rooms.get(device) if device else None,
            device=device,
            source=event.source,
            fields=fields,
        )
        self._queue(other=Pending(topic_events(self.prefix, self.site.site.id), encode_event(wire)))

    # -- health ------------------------------------------------------------------------------------

    def self_metrics(self) -> PollResult:
        """The collector's own health as a readings message of a `system` pseudo-device."""
        count, size = self.outbox.depth()
        by_reason = self.outbox.dropped_by_reason
        pub = self.publisher
        values: dict[str, Value] = {
            "outbox_depth": count,
            "outbox_bytes": size,
            "outbox_oldest_age_s": round(self.outbox.oldest_age_s(), 3),
            "outbox_dropped_total": by_reason["bytes"] + by_reason["age"],
            "outbox_dropped_bytes": by_reason["bytes"],
            "outbox_dropped_age": by_reason["age"],
            "outbox_unstored_dropped": self.unstored_dropped,
            "outbox_awaiting_confirmation": self.outbox.awaiting,
            "broker_connected": pub.connected.is_set(),
            "published": pub.published,
            "acked": pub.acked,
            "confirmed": pub.confirmed,
            "republished": pub.republished,
            "broker_refused": pub.refused,
        }
        if self.traps is not None:
            values["traps_received"] = self.traps.received
            values["traps_refused"] = self.traps.rejects.noted
        return PollResult(self.self_ref, datetime.now(UTC), tuple(Metric(k, v) for k, v in values.items()))

    def snapshot(self, running: bool = True) -> dict[str, Any]:
        """What `roomguard status` shows about this process (no secrets)."""
        count, size = self.outbox.depth()
        drop = self.outbox.last_drop
        devices = {
            dev: {
                "room": self.rooms.get(dev),
                "last_poll": h.last_poll.isoformat() if h.last_poll else None,
                "last_ok": h.last_ok.isoformat() if h.last_ok else None,
                "quality": h.quality.value if h.quality else None,
                "error": h.error,
                "failures": h.failures,
                "polls": h.polls,
            }
            for dev, h in self.poller.health.items()
        }
        return {
            "running": running,
            **process_identity(),
            "site": self.site.site.id,
            "collector_id": self.collector_id,
            "devices": devices,
            "outbox": {
                "depth": count,
                "bytes": size,
                "awaiting_confirmation": self.outbox.awaiting,
                "release": self.outbox.release,
                "max_bytes": self.outbox.max_bytes,
                "oldest_age_s": round(self.outbox.oldest_age_s(), 3),
                "dropped_total": self.outbox.dropped_total,
                "dropped_by_reason": self.outbox.dropped_by_reason,
                "unstored_dropped": self.unstored_dropped,
                "last_drop": None
                if drop is None
                else {
                    "when": datetime.fromtimestamp(drop.when, UTC).isoformat(),
                    "count": drop.count,
                    "reason": drop.reason,
                },
            },
            "broker": {
                "host": self.site.mqtt.host,
                "port": self.site.mqtt.port,
                "connected": self.publisher.connected.is_set(),
                "published": self.publisher.published,
                "acked": self.publisher.acked,
                "inflight": self.publisher.inflight,
                "confirmed": self.publisher.confirmed,
                "republished": self.publisher.republished,
                "refused": self.publisher.refused,
            },
            **({"traps": self._trap_status()} if self.traps is not None else {}),
        }

    def _trap_status(self) -> dict[str, Any]:
        """The trap listener: where, how many traps, and every refusal by source (a misconfigured card)."""
        rx = self.traps
        assert rx is not None
        return {
            "listen": f"{rx.host}:{rx.port}",
            "received": rx.received,
            "dropped": rx.dropped,
            "refused_total": rx.rejects.noted,
            "refused": rx.rejects.report(),
        }

    async def _every(self, interval_s: float, job: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                job()
            except Exception:
                _LOG.exception("periodic job %s failed", getattr(job, "__name__", job))

    def _metrics_tick(self) -> None:
        self.outbox.enforce_bounds()  # the age bound must bite even when nothing new is stored
        self._queue(poll=self.self_metrics())

    def _lost_tick(self) -> None:
        self.publisher.republish_lost(time.time())

    def _snapshot_tick(self) -> None:
        write_snapshot(self.state_dir, "collector", self.snapshot())
        self.outbox.serve_backup_request()  # only its owner can read the locked outbox

    # -- lifecycle ---------------------------------------------------------------------------------

    async def run(
        self, stop: asyncio.Event, *, metrics_interval_s: float, snapshot_interval_s: float
    ) -> None:
        """Run until `stop` is set, then stop cleanly (the outbox keeps whatever was not delivered)."""
        receiver = self.traps
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.publisher.start()
            if receiver is not None:
                await receiver.start()
            self._snapshot_tick()
            tasks = [
                asyncio.create_task(self.poller.run(), name="poller"),
                asyncio.create_task(self._every(metrics_interval_s, self._metrics_tick), name="self-metrics"),
                asyncio.create_task(self._every(snapshot_interval_s, self._snapshot_tick), name="snapshot"),
            ]
            if self.outbox.release == "archive":
                lost = self._every(LOST_CHECK_EVERY_S, self._lost_tick)
                tasks.append(asyncio.create_task(lost, name="republish-lost"))
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([stopper, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if tasks[0] in done:
                tasks[0].result()  # the poller died: raise its error
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if receiver is not None:
                with contextlib.suppress(Exception):
                    await receiver.stop()
            await self.poller.close()
            self.flush()
            with contextlib.suppress(Exception):
                await self.publisher.announce_offline("shutdown")
            await self.publisher.stop()
            with contextlib.suppress(Exception):
                write_snapshot(self.state_dir, "collector", self.snapshot(running=False))
            self.outbox.close()
            self.seq.close()


async def run_collector(
    site: SiteConfig,
    state_dir: Path,
    stop: asyncio.Event,
    *,
    collector_id: str | None = None,
    metrics_room: str | None = None,
    metrics_interval_s: float = 10.0,
    snapshot_interval_s: float = 2.0,
) -> None:
    """Run the collector of `site` with its state under `state_dir` until `stop` is set."""
    collector = Collector(site, state_dir, collector_id or default_collector_id(), metrics_room=metrics_room)
    await collector.run(stop, metrics_interval_s=metrics_interval_s, snapshot_interval_s=snapshot_interval_s)
