"""`roomguard alerts SITE` as a process: bus messages in, rule engine and lifecycle, notifications out.

Reads everything of its site through the durable consumer (readings, device and collector status,
events), folds each batch into the alert service in one database transaction and acks the batch only
after that commit: a killed process loses nothing and, restarted, neither fires again nor forgets. A
clock tick lets hold-for, staleness, group waits and reminders advance with no input. Deliveries leave
the notification outbox channel by channel: a failing channel retries with backoff, never blocks the
others, and a permanent failure is shown by `roomguard status`.

A channel with a budget (`alerts.rate_limit`, every channel but MQTT) sends at most `max_messages` per
sliding `window_s`: what fits goes out at once, the most severe first; what does not is held for at
most `summary_wait_s` (more may come) and then folded into one summary per room, sent instead
(alerts.notify.summarise). The channel's send times are kept in memory and read back from the outbox at
start, so a restart does not give a channel a fresh budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alerts.channels import alerts_client_id, build_channels
from alerts.inputs import (
    Input,
    Labels,
    collector_status_from_wire,
    event_from_wire,
    samples_from_poll,
    status_from_wire,
)
from alerts.lifecycle import Policy
from alerts.notify.base import Channel, DeliveryError
from alerts.notify.summarise import Budget, Pending, plan
from alerts.pack import site_rule_set
from alerts.service import LIMIT_SUMMARY, AlertService, QueuedDelivery
from bus.broker import broker_settings
from bus.consumer import ConsumerSettings, DurableConsumer, Message
from bus.state_dir import prepare_state_dir
from bus.status_file import process_identity, write_snapshot
from devices.reading import DeviceClass
from devices.registry import ProfileRegistry
from devices.wire import (
    COLLECTOR_LEVEL,
    INGEST_LEVEL,
    WireError,
    decode_event,
    decode_poll,
    decode_status,
)
from records.db import make_engine, session_factory
from records.migrate import upgrade
from records.site import records_url
from siteconfig.alerts_config import AlertsConfig
from siteconfig.config import SiteConfig

_LOG = logging.getLogger("alerts")
TICK_S = 1.0
STATUS_EVERY_S = 2.0
SEND_TIMEOUT_S = 60.0
SUMMARY_WAIT_S = 10.0  # a rate-limited channel gathers what it holds back this long into one summary


def device_labels(site: SiteConfig, registry: ProfileRegistry | None = None) -> dict[str, Labels]:
    """Labels of every configured device (class from its profile, zone, rack, tags from the site file)."""
    registry = registry or ProfileRegistry.builtin()
    out: dict[str, Labels] = {}
    for d in site.devices:
        cls = registry.get(d.profile).device_class
        out[d.id] = Labels(
            site.site.id, d.room, d.id, DeviceClass(cls), d.zone, d.rack, tuple(sorted(d.tags.items()))
        )
    return out


class AlertsProcess:
    """The alerts process of one site (see the module docstring)."""

    def __init__(
        self,
        site: SiteConfig,
        state_dir: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        summary_wait_s: float = SUMMARY_WAIT_S,
    ):
        self.site = site
        self.state_dir = state_dir
        self.now = clock or (lambda: datetime.now(UTC))
        prepare_state_dir(state_dir)
        engine = make_engine(records_url(site, state_dir))
        upgrade(engine)
        cfg = site.alerts or AlertsConfig()
        self.service = AlertService(
            session_factory(engine),
            site_rule_set(site.alerts),
            Policy.from_config(cfg, site.site.timezone),
            tz=ZoneInfo(site.site.timezone),  # message times in the site's zone
        )
        self.channels: dict[str, Channel] = build_channels(site)
        # Every channel but MQTT has the site's budget: MQTT carries each alert's state, not pages
        # (a summarised alert's retained topic would keep its previous state), docs/alerts.md.
        limit = cfg.rate_limit
        self.budgets: dict[str, Budget] = {
            name: Budget(limit.max_messages, float(limit.window_s))
            for name, ch in cfg.channels.items()
            if ch.type != "mqtt"
        }
        self.summary_wait_s = summary_wait_s
        self._holding: dict[str, datetime] = {}  # channel → since when it holds deliveries back
        since = self.now() - timedelta(seconds=float(limit.window_s))
        self._sent_at: dict[str, list[float]] = {
            name: [t.timestamp() for t in times] for name, times in self.service.sent_times(since).items()
        }
        self.summarised = 0
        self.labels = device_labels(site)
        self.prefix = site.mqtt.topic_prefix
        self.consumer = DurableConsumer(
            broker_settings(site, alerts_client_id(site), role="alerts"),
            ConsumerSettings(topic=f"{self.prefix}/{site.site.id}/#", batch_size=2000, batch_delay_s=0.2),
            name="alerts",
        )
        self._wake = asyncio.Event()
        self.undecodable = 0
        self.sent = 0
        self.failed_attempts = 0

    # -- bus in

    def inputs_of(self, msg: Message) -> list[Input]:
        """Engine inputs of one bus message (none for topics alerts does not read)."""
        levels = msg.topic[len(self.prefix) + 1 :].split("/")
        if len(levels) == 4 and levels[3] == "readings":
            result, _ = decode_poll(msg.payload)
            return list(samples_from_poll(result, self.labels.get(result.ref.device)))
        if len(levels) == 4 and levels[3] == "status":
            status = decode_status(msg.payload)
            if levels[1] == COLLECTOR_LEVEL:
                return [collector_status_from_wire(levels[0], levels[2], status)]
            labels = self.labels.get(levels[2]) or Labels(levels[0], levels[1], levels[2])
            return [status_from_wire(labels, status)]
        if len(levels) == 2 and levels[1] == "events":
            event = decode_event(msg.payload)
            return [event_from_wire(event, self.labels.get(event.device or ""))]
        return []  # alerts/…, _ingest/… confirmations

    async def handle(self, batch: list[Message], stop: asyncio.Event, deadline: float | None) -> bool:
        """Fold one batch in; True (ack) only after the transaction holding it committed."""
        inputs: list[Input] = []
        for msg in batch:
            if msg.topic.split("/")[-2:-1] == [INGEST_LEVEL]:
                continue
            try:
                inputs += self.inputs_of(msg)
            except WireError as exc:
                self.undecodable += 1
                _LOG.warning("alerts: undecodable message on %s: %s", msg.topic, exc)
        if inputs:
            # SQLite work off the loop: the consumer keeps receiving while a transaction commits.
            await asyncio.to_thread(self.service.ingest, inputs, self.now())
            self._wake.set()
        return True

    # -- clock and delivery

    async def tick_loop(self, stop: asyncio.Event) -> None:
        """Let time act (hold-for, staleness, group waits, reminders) once a second."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)
            if stop.is_set():
                return
            try:
                if await asyncio.to_thread(self.service.tick, self.now()):
                    self._wake.set()
            except Exception:
                _LOG.exception("alerts: clock tick failed")

    async def deliver_loop(self, stop: asyncio.Event) -> None:
        """Send what is due, each channel on its own so one that hangs or fails never holds the others."""
        busy: dict[str, asyncio.Task[None]] = {}
        while not stop.is_set():
            due = await asyncio.to_thread(self.service.due_deliveries, self.now())
            by_channel: dict[str, list[QueuedDelivery]] = {}
            for d in due:
                by_channel.setdefault(d.channel, []).append(d)
            for name, items in by_channel.items():
                task = busy.get(name)
                if task is None or task.done():
                    busy[name] = asyncio.create_task(self._send_all(name, items), name=f"deliver-{name}")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)
        for task in busy.values():
            task.cancel()
        for task in busy.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _send_all(self, name: str, items: Sequence[QueuedDelivery]) -> None:
        channel = self.channels.get(name)
        budget = self.budgets.get(name)
        if channel is not None and budget is not None:
            items = await self._within_budget(name, budget, items)
        for d in items:
            error: DeliveryError | None = None
            if channel is None:
                error = DeliveryError(f"no channel named {name!r} in alerts.channels", retryable=False)
            else:
                try:
                    async with asyncio.timeout(SEND_TIMEOUT_S):
                        await channel.send(d.notification)
                except DeliveryError as exc:
                    error = exc
                except TimeoutError:
                    error = DeliveryError(f"no answer within {SEND_TIMEOUT_S:.0f} s")
                except Exception as exc:  # a channel bug must not stop delivery to the others
                    error = DeliveryError(f"{type(exc).__name__}")
            if error is None:
                self.sent += 1
                if budget is not None:
                    self._sent_at.setdefault(name, []).append(self.now().timestamp())
            else:
                self.failed_attempts += 1
                _LOG.warning("alerts: %s via %s failed: %s", d.kind, name, error.detail)
            await asyncio.to_thread(self.service.record_attempt, d.id, error is None, error, self.now())

    async def _within_budget(
        self, name: str, budget: Budget, items: Sequence[QueuedDelivery]
    ) -> list[QueuedDelivery]:
        """What `name` sends now within its budget: the most urgent that fit, then, once the hold is
        over, one summary per room of the rest (their deliveries settled by it); rate-limit summaries
        waiting for a retry always go."""
        now = self.now()
        ts = now.timestamp()
        history = [t for t in self._sent_at.get(name, ()) if ts - budget.window_s < t]
        self._sent_at[name] = history
        summaries = [d for d in items if d.kind == LIMIT_SUMMARY]
        rest = [d for d in items if d.kind != LIMIT_SUMMARY]
        if not rest:
            return summaries
        p = plan(budget, [Pending(d.notification, d.created_at.timestamp()) for d in rest], ts, history)
        out = [rest[i] for i in p.sent]
        if not p.summaries:
            self._holding.pop(name, None)
            return out + summaries
        since = self._holding.setdefault(name, now)
        if now - since < timedelta(seconds=self.summary_wait_s):
            # Hold the rest back until the wait is over (more may come: one summary, not many).
            held = [rest[i].id for s in p.summaries for i in s.members]
            until = since + timedelta(seconds=self.summary_wait_s)
            await asyncio.to_thread(self.service.defer, held, until)
            return out + summaries
        del self._holding[name]
        for s in p.summaries:
            ids = [rest[i].id for i in s.members]
            row = await asyncio.to_thread(self.service.record_summarised, name, s.notification, ids, now)
            self.summarised += len(ids)
            _LOG.info("alerts: %d notifications via %s over the rate limit: one summary", len(ids), name)
            summaries.append(row)
        return out + summaries

    # -- status

    def snapshot(self, running: bool = True) -> dict[str, Any]:
        """What `roomguard status` shows about alerts (no secrets)."""
        open_alerts = self.service.list_open()
        deliveries = self.service.deliveries()
        by_channel: dict[str, dict[str, Any]] = {}
        for d in deliveries:
            entry = by_channel.setdefault(
                d.channel, {"pending": 0, "sent": 0, "failed": 0, "last_error": None}
            )
            entry[d.status] = entry.get(d.status, 0) + 1
            if d.last_error and d.status != "sent":
                entry["last_error"] = d.last_error
        return {
            "running": running,
            **process_identity(),
            "site": self.site.site.id,
            "broker_connected": self.consumer.connected.is_set(),
            "open": [
                {
                    "id": a.key,
                    "severity": a.severity,
                    "rule": a.rule_id,
                    "state": a.state,
                    "device": a.labels.get("device"),
                    "room": a.labels.get("room"),
                    "since": a.started_at.isoformat(),
                    "acked_by": a.acked_by,
                    "suppressed": a.suppressed,
                    "message": _message(a.texts),
                }
                for a in open_alerts
                if a.state == "firing"
            ],
            "channels": by_channel,
            "sent": self.sent,
            "failed_attempts": self.failed_attempts,
            "summarised": self.summarised,
            "undecodable": self.undecodable,
        }

    async def status_loop(self, stop: asyncio.Event) -> None:
        """Write the status snapshot every STATUS_EVERY_S."""
        while not stop.is_set():
            try:
                snap = await asyncio.to_thread(self.snapshot)
                write_snapshot(self.state_dir, "alerts", snap)
            except Exception:
                _LOG.exception("alerts: status snapshot failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set."""
        loops = [
            asyncio.create_task(self.tick_loop(stop), name="alerts-tick"),
            asyncio.create_task(self.deliver_loop(stop), name="alerts-deliver"),
            asyncio.create_task(self.status_loop(stop), name="alerts-status"),
        ]
        try:
            await self.consumer.run(self.handle, stop)
        finally:
            stop.set()
            self._wake.set()
            for t in loops:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            with contextlib.suppress(Exception):
                write_snapshot(self.state_dir, "alerts", self.snapshot(running=False))


def _message(texts: Any) -> dict[str, str]:
    """The alert's message in both languages, with its forecast or margin when it has one."""
    out: dict[str, str] = {}
    for lang in ("zh_TW", "en"):
        parts = [texts.get(part, {}).get(lang) for part in ("message", "forecast", "margin")]
        out[lang] = "; ".join(p for p in parts if p)
    return out


async def run_alerts(site: SiteConfig, state_dir: Path, stop: asyncio.Event) -> None:
    """Run the alerts process of `site` with its records under `state_dir` until `stop` is set."""
    await AlertsProcess(site, state_dir).run(stop)
