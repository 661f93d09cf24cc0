"""`roomguard compliance SITE serve`: bus in, evidence and check results out.

Reads everything of its site through the durable consumer: readings feed the live picture (newest
values, environment windows) and the detectors (a generator run becomes a test record, a UPS self-test
result a test record); the retained alert topic opens and updates incident reviews (compliance never
imports alerts: the alert payload is the contract). A batch is acked only after the records and the
detectors' progress it produced are committed together, so a killed process neither loses a run nor
records it twice. Every `evaluate_every_s` the board is evaluated; results that changed are stored and
every item is published as a reading of class `compliance` (device = the item's key, room
`_compliance`: the results belong to the site), through a durable outbox, so alert rules fire on them
and ingest stores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bus.broker import broker_settings
from bus.consumer import ConsumerSettings, DurableConsumer, Message
from bus.outbox import Outbox
from bus.publisher import MqttPublisher
from bus.state_dir import prepare_state_dir
from bus.status_file import process_identity, write_snapshot
from compliance.access.model import DoorEvent
from compliance.access.store import add_door_events
from compliance.checks import evaluate
from compliance.facts import AlertInfo, DeviceInfo, Facts
from compliance.generator_runs import RunDetector, sample_from_metrics
from compliance.incidents import alert_info, incident_from_alert, incident_id, parse_alert
from compliance.items import ITEMS
from compliance.kinds import KINDS, Incident, RecordModel
from compliance.result import CheckResult
from compliance.store import Records, put, save_state
from compliance.telemetry import Telemetry
from compliance.ups_tests import UpsTestDetector, ups_sample_from_metrics
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality
from devices.registry import ProfileRegistry
from devices.wire import (
    COLLECTOR_LEVEL,
    COMPLIANCE_LEVEL,
    WireError,
    decode_event,
    decode_poll,
    decode_status,
    encode_poll,
    topic_compliance,
)
from records.audit import Actor
from records.db import make_engine, session_factory
from records.migrate import upgrade
from records.site import records_url
from siteconfig.config import SiteConfig

_LOG = logging.getLogger("compliance")
# Alert topics named `summary:{site}:{room}:{time}…` carry the alerts process's group notifications.
SUMMARY_TOPIC_PREFIX = "summary:"
MODEL = "roomguard-compliance"
STATUS_EVERY_S = 2.0
TICK_S = 1.0
OUTBOX_MAX_BYTES = 64 * 1024 * 1024
OUTBOX_MAX_AGE_S = 7 * 86_400.0
# Records older than this are still read for the checks: a cadence (a semi-annual inspection, a yearly
# drill) needs the last occurrence even when it is older than the period the board looks at.
HISTORY_DAYS = 400
# How often the background measures the newest ended days of the environment envelopes (and retries
# after InfluxDB was unreachable); a day ends at local midnight, so hourly keeps yesterday ready.
MEASURE_DAYS_EVERY_S = 3600.0
STATE_DETECTORS = "detectors"
STATE_PUBLISH = "publish"


def compliance_client_id(site: SiteConfig) -> str:
    """MQTT client id of the site's compliance process (its durable session)."""
    return f"roomguard-compliance-{site.site.id}"


def site_devices(site: SiteConfig, registry: ProfileRegistry | None = None) -> tuple[DeviceInfo, ...]:
    """Every configured device with its class (from its profile) and room."""
    registry = registry or ProfileRegistry.builtin()
    return tuple(DeviceInfo(d.id, registry.get(d.profile).device_class, d.room) for d in site.devices)


def process_actor() -> Actor:
    """Who the process's own writes are audited as."""
    return Actor("roomguard-compliance", f"process:compliance@{socket.gethostname()}")


@dataclass(slots=True)
class Found:
    """What one batch produced: records to write (in order)."""

    records: list[RecordModel]


class ComplianceProcess:
    """The compliance process of one site (see the module docstring)."""

    def __init__(self, site: SiteConfig, state_dir: Path, *, clock: Callable[[], datetime] | None = None):
        self.site = site
        self.cfg = site.compliance
        self.state_dir = state_dir
        self.now = clock or (lambda: datetime.now(UTC))
        self.tz = ZoneInfo(site.site.timezone)
        prepare_state_dir(state_dir)
        engine = make_engine(records_url(site, state_dir))
        upgrade(engine)
        self.records = Records(session_factory(engine))
        self.actor = process_actor()
        self.devices = site_devices(site)
        self.classes = {d.id: d.device_class for d in self.devices}
        self.telemetry = Telemetry(self.cfg.environment)
        saved = self.records.load_state(STATE_DETECTORS) or {}
        self.runs = RunDetector.from_json(self.cfg.generator_tests, saved.get("runs"))
        self.ups_tests = UpsTestDetector.from_json(saved.get("ups"))
        self.alerts: dict[str, AlertInfo] = {}
        pub = self.records.load_state(STATE_PUBLISH) or {}
        self.epoch: str = pub.get("epoch") or uuid.uuid4().hex[:12]
        self.seqs: dict[str, int] = dict(pub.get("seqs") or {})
        self.prefix = site.mqtt.topic_prefix
        self.consumer = DurableConsumer(
            broker_settings(site, compliance_client_id(site), role="compliance"),
            ConsumerSettings(topic=f"{self.prefix}/{site.site.id}/#", batch_size=2000, batch_delay_s=0.2),
            name="compliance",
        )
        # The outbox's SQLite connection belongs to the thread that opens it: run() opens it on the loop.
        self.outbox: Outbox | None = None
        self.publisher: MqttPublisher | None = None
        self.board: list[CheckResult] = []
        self.recorded = 0
        self.undecodable = 0
        self.evaluated_at: datetime | None = None
        self.days_measured_at: datetime | None = None
        self._door_events: list[DoorEvent] = []
        self._access_cache: tuple[tuple[object, ...], list[Any], list[Any]] | None = None
        self.days_error: str | None = None

    # -- bus in

    def fold(self, msg: Message) -> list[RecordModel]:
        """Fold one bus message into the live picture; the records it completes."""
        levels = msg.topic[len(self.prefix) + 1 :].split("/")
        if len(levels) == 4 and levels[3] == "readings":
            result, _ = decode_poll(msg.payload)
            return self._poll(result)
        if len(levels) == 4 and levels[3] == "status" and levels[1] != COLLECTOR_LEVEL:
            self.telemetry.status(levels[2], decode_status(msg.payload).state == "online")
            return []
        if len(levels) == 3 and levels[1] == "alerts":
            return self._alert(levels[2], msg.payload)
        if len(levels) == 2 and levels[1] == "events":
            event = decode_event(msg.payload)
            if event.kind == "door" and event.device:
                # Access evidence without a panel export (CC-16000 (一)): forced and held doors.
                self._door_events.append(DoorEvent(event.ts, event.device, event.room or "", event.name))
        return []

    def _poll(self, result: PollResult) -> list[RecordModel]:
        good = self.telemetry.poll(result)
        cls = result.ref.device_class
        if cls is DeviceClass.GENSET:
            out: list[RecordModel] = []
            out += self.runs.feed(sample_from_metrics(result.ts, result.ref.device, good))
            return out
        if cls is DeviceClass.UPS and good:
            return list(self.ups_tests.feed(ups_sample_from_metrics(result.ts, result.ref.device, good)))
        return []

    def _alert(self, alert_id: str, payload: bytes) -> list[RecordModel]:
        if alert_id.startswith(SUMMARY_TOPIC_PREFIX):
            # A group notification (roomguard.alert-summary/1, docs/mqtt.md): every alert it counts has
            # its own retained topic, which is where an incident comes from.
            return []
        parsed = parse_alert(payload)
        if parsed is None:  # an empty retained payload: the alert was cleared
            self.alerts.pop(alert_id, None)
            return []
        self.alerts[parsed.id] = alert_info(parsed)
        existing = self.records.get(Incident, incident_id(parsed))
        device = (parsed.labels or {}).get("device")
        context = self._context_lines(device) if existing is None and device else []
        incident = incident_from_alert(parsed, existing, self.cfg.incidents, context, tz=self.tz)
        return [] if incident is None or incident == existing else [incident]

    def _context_lines(self, device: str) -> list[str]:
        state = self.telemetry.devices.get(device)
        if state is None or not state.metrics:
            return []
        values = ", ".join(f"{k}={v}" for k, v in sorted(state.metrics.items()) if not k.startswith("alarm_"))
        at = state.last_seen.astimezone(self.tz).isoformat(timespec="seconds") if state.last_seen else "?"
        return [f"{at} {device}: {values}"]

    async def handle(self, batch: list[Message], stop: asyncio.Event, deadline: float | None) -> bool:
        """Fold one batch in; True (ack) only after its records and the detectors' state committed."""
        found: list[RecordModel] = []
        for msg in batch:
            try:
                found += self.fold(msg)
            except (WireError, ValueError) as exc:
                self.undecodable += 1
                _LOG.warning("compliance: undecodable message on %s: %s", msg.topic, exc)
        doors, self._door_events = self._door_events, []
        await asyncio.to_thread(self._commit, found, self.now(), doors)
        return True

    def _commit(self, found: Sequence[RecordModel], now: datetime, doors: Sequence[DoorEvent] = ()) -> None:
        with self.records.sessions.begin() as s:
            add_door_events(s, doors)
            for r in found:
                if put(s, r, self.actor, now).outcome != "unchanged":
                    self.recorded += 1
                    _LOG.info("compliance: recorded %s %s", r.KIND, r.ref())
            save_state(
                s, STATE_DETECTORS, {"runs": self.runs.to_json(), "ups": self.ups_tests.to_json()}, now
            )

    # -- the board

    def facts(self, now: datetime) -> Facts:
        """Everything the checks look at, now."""
        since = now - timedelta(days=max(HISTORY_DAYS, self.cfg.lookback_days))
        with self.records.sessions() as s:
            from compliance.store import records as load_records

            kinds = {name: load_records(s, model, since=since) for name, model in KINDS.items()}
        return Facts(
            now=now,
            tz=self.tz,
            config=self.cfg,
            site_id=self.site.site.id,
            rooms=tuple(r.id for r in self.site.rooms),
            devices=self.devices,
            records=kinds,  # type: ignore[arg-type]
            telemetry=dict(self.telemetry.devices),
            environment=self.telemetry.environment(now),
            alerts=tuple(self.alerts.values()),
            access_review=self._access_review(now),
        )

    def _access_review(self, now: datetime) -> CheckResult | None:
        """Item (十三) from the stored access reviews (compliance.access), None without a signed one."""
        from compliance.access.board import access_review_result
        from compliance.access.store import AccessStore

        store = AccessStore(self.records.sessions)
        # Reviews of 20 000 grants are large JSON: read again only when a review or a grant changed.
        version = store.version()
        if self._access_cache is None or self._access_cache[0] != version:
            self._access_cache = (version, store.reviews(), store.grants())
        _, reviews, grants = self._access_cache
        return access_review_result(reviews, grants, self.cfg.access_review, now, self.tz)

    def evaluate_now(self, now: datetime) -> list[CheckResult]:
        """Evaluate the board and store what changed; the results."""
        closed = self.runs.flush(now)
        if closed:
            self._commit(closed, now)
        results = evaluate(self.facts(now))
        self.records.save_results(results, now)
        self.board, self.evaluated_at = results, now
        return results

    def publish(self, results: Sequence[CheckResult], now: datetime) -> None:
        """Queue every item's result as a reading (on the loop's thread, which owns the outbox)."""
        if self.outbox is None or self.publisher is None:
            return
        messages = []
        for r in results:
            seq = self.seqs.get(r.item, -1) + 1
            self.seqs[r.item] = seq
            days = r.days_to_due(now)
            ref = DeviceRef(self.site.site.id, COMPLIANCE_LEVEL, r.item, DeviceClass.COMPLIANCE, MODEL)
            poll = PollResult(
                ref,
                now,
                (
                    Metric("status", r.status),
                    Metric("days_to_due", days, Quality.GOOD if days is not None else Quality.UNAVAILABLE),
                ),
            )
            topic = topic_compliance(self.prefix, self.site.site.id, r.item)
            messages.append((topic, encode_poll(poll, seq, self.epoch)))
        self.outbox.put_many(messages)
        self.records.save_state(STATE_PUBLISH, {"epoch": self.epoch, "seqs": self.seqs}, now)
        self.publisher.notify()

    async def evaluate_loop(self, stop: asyncio.Event) -> None:
        """Evaluate the board every `evaluate_every_s` (and once at start)."""
        while not stop.is_set():
            try:
                now = self.now()
                self.publish(await asyncio.to_thread(self.evaluate_now, now), now)
            except Exception:
                _LOG.exception("compliance: evaluating the board failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.evaluate_every_s)

    async def measure_days_once(self) -> int:
        """Measure the ended local days of the last `keep_days_measured` not kept yet; room-days seen."""
        from compliance.envelope import envelope_days
        from compliance.envelope_store import EnvelopeDays
        from compliance.influxql import InfluxQL
        from compliance.telemetry import envelopes_of

        env = self.cfg.environment
        now = self.now()
        today = datetime.combine(now.astimezone(self.tz).date(), datetime.min.time(), tzinfo=self.tz)
        start = today - timedelta(days=env.keep_days_measured)
        async with InfluxQL.from_site(self.site) as client:
            days = await envelope_days(
                client,
                self.site.site.id,
                start,
                today,
                self.tz,
                list(envelopes_of(env)),
                excluded=env.exclude_devices,
                store=EnvelopeDays(self.records.sessions),
                now=now,
            )
        self.days_measured_at, self.days_error = now, None
        return len(days)

    async def measure_days_loop(self, stop: asyncio.Event) -> None:
        """Keep the environment's ended days measured, so a report of months reads them, not raw samples."""
        if self.site.influxdb is None or self.cfg.environment.keep_days_measured == 0:
            return
        while not stop.is_set():
            try:
                n = await self.measure_days_once()
                _LOG.info("compliance: %d room-days of the environment measured or kept", n)
            except Exception as exc:
                # InfluxDB down or refusing: the reports measure what is missing themselves; retry later.
                self.days_error = f"{type(exc).__name__}: {exc}"[:500]
                _LOG.warning("compliance: measuring the environment's days failed: %s", self.days_error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MEASURE_DAYS_EVERY_S)

    # -- status

    def snapshot(self, running: bool = True) -> dict[str, Any]:
        """What `roomguard status` shows about compliance."""
        titles = {i.key: i for i in ITEMS}
        return {
            "running": running,
            **process_identity(),
            "site": self.site.site.id,
            "broker_connected": self.consumer.connected.is_set(),
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
            "board": [
                {
                    "item": r.item,
                    "code": titles[r.item].code if r.item in titles else "",
                    "status": r.status,
                    "reason_zh": r.reason_zh,
                    "reason_en": r.reason_en,
                }
                for r in self.board
            ],
            "recorded": self.recorded,
            "undecodable": self.undecodable,
            "days_measured_at": self.days_measured_at.isoformat() if self.days_measured_at else None,
            "days_error": self.days_error,
            "outbox_depth": self.outbox.depth()[0] if self.outbox else None,
        }

    async def status_loop(self, stop: asyncio.Event) -> None:
        """Write the status snapshot every STATUS_EVERY_S."""
        while not stop.is_set():
            try:
                write_snapshot(self.state_dir, "compliance", self.snapshot())
                if self.outbox is not None:
                    self.outbox.serve_backup_request()  # only its owner can read the locked outbox
            except Exception:
                _LOG.exception("compliance: status snapshot failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set."""
        self.outbox = Outbox(
            self.state_dir / "compliance-outbox.db", OUTBOX_MAX_BYTES, OUTBOX_MAX_AGE_S, release="broker"
        )
        self.publisher = MqttPublisher(
            broker_settings(self.site, f"{compliance_client_id(self.site)}-pub", role="compliance"),
            self.outbox,
        )
        await self.publisher.start()
        loops = [
            asyncio.create_task(self.evaluate_loop(stop), name="compliance-evaluate"),
            asyncio.create_task(self.status_loop(stop), name="compliance-status"),
        ]
        # Measuring months of history can take minutes: cancelled at stop, not waited for (a day is
        # kept only once measured, so nothing is half-written).
        measuring = asyncio.create_task(self.measure_days_loop(stop), name="compliance-measure-days")
        try:
            await self.consumer.run(self.handle, stop)
        finally:
            stop.set()
            measuring.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await measuring
            for t in loops:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            with contextlib.suppress(Exception):
                await self.publisher.stop()
            with contextlib.suppress(Exception):
                write_snapshot(self.state_dir, "compliance", self.snapshot(running=False))
            self.outbox.close()
            self.outbox = self.publisher = None


async def run_compliance(site: SiteConfig, state_dir: Path, stop: asyncio.Event) -> None:
    """Run the compliance process of `site` with its records under `state_dir` until `stop` is set."""
    await ComplianceProcess(site, state_dir).run(stop)
