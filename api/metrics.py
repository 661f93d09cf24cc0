"""`GET /metrics` in the Prometheus text format, so a site's own Prometheus can scrape the box.

A custom collector (prometheus_client's "custom collectors") reads, at scrape time, the live view (poll
durations, device quality, reading ages, check results, the API's broker link), the process snapshots of
the state directory (outbox depth, ingest lag, processes up) and the alert counts of the records
database. It lives in a CollectorRegistry of each app, never the global one, so apps (and tests) never
share series. Login: a token with status.read (Prometheus `authorization: credentials_file:`), or none
with `api.metrics_public: true`; docs/api.md has the scrape configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from alerts.store import AlertCounts, AlertStore
from api.auth import Principal, require
from api.context import AppContext
from api.errors import ErrorBody
from api.live_model import LiveSnapshot, LiveSource, StaticLive
from api.roles import Permission
from bus.status_report import ProcessFigures, state_dir_figures
from compliance.items import BY_KEY
from compliance.result import Status
from devices.reading import Quality
from records.db import session_factory
from siteconfig.alert_rules import Severity

METRICS_PATH = "/metrics"
# Every quality a device can show: the wire's, and `none` (nothing received since the API started).
QUALITIES = (*(q.value for q in Quality), "none")
CHECK_STATUSES: tuple[str, ...] = get_args(Status)
SEVERITIES: tuple[str, ...] = get_args(Severity)
_DEVICE = ("device", "room", "class")


def alert_counts(engine: Engine) -> AlertCounts:
    """Firing, acknowledged and silenced alerts by severity, from the records database."""
    with session_factory(engine)() as s:
        return AlertStore(s).counts()


def live_families(snap: LiveSnapshot) -> Iterator[Metric]:
    """Series of the live view: devices, collectors, checks, the API's own broker link."""
    duration = GaugeMetricFamily(
        "roomguard_device_poll_duration_seconds",
        "How long the newest poll of the device took.",
        labels=_DEVICE,
    )
    quality = GaugeMetricFamily(
        "roomguard_device_quality",
        "1 for the quality of the device's newest poll, 0 for the others (none: no reading yet).",
        labels=[*_DEVICE, "quality"],
    )
    age = GaugeMetricFamily(
        "roomguard_device_reading_age_seconds", "Seconds since the device's newest reading.", labels=_DEVICE
    )
    online = GaugeMetricFamily(
        "roomguard_device_online",
        "1 online, 0 offline, as the collector's device status says.",
        labels=_DEVICE,
    )
    by_quality = GaugeMetricFamily(
        "roomguard_devices",
        "Devices of the site file by the quality of their newest poll.",
        labels=["quality"],
    )
    counts = dict.fromkeys(QUALITIES, 0)
    for d in snap.devices:
        labels = [d.device, d.room, d.device_class]
        if d.duration_s is not None:
            duration.add_metric(labels, d.duration_s)
        for q in QUALITIES:
            quality.add_metric([*labels, q], 1.0 if d.quality == q else 0.0)
        counts[d.quality] = counts.get(d.quality, 0) + 1
        if d.at is not None:
            age.add_metric(labels, (snap.taken_at - d.at).total_seconds())
        if d.status is not None:
            online.add_metric(labels, 1.0 if d.status == "online" else 0.0)
    for q, n in counts.items():
        by_quality.add_metric([q], n)
    collectors = GaugeMetricFamily(
        "roomguard_collector_online",
        "1 while the collector's retained status says online.",
        labels=["collector"],
    )
    for c in snap.collectors:
        collectors.add_metric([c.collector], 1.0 if c.state == "online" else 0.0)
    checks = GaugeMetricFamily(
        "roomguard_check_status",
        "CC-16000 item: 1 for its current status (pass, warn, fail, unknown), 0 for the others.",
        labels=["item", "code", "status"],
    )
    due = GaugeMetricFamily(
        "roomguard_check_days_to_due",
        "CC-16000 item: days until it is due (when it has a cadence).",
        labels=["item"],
    )
    for check in snap.checks:
        item = BY_KEY.get(check.item)
        code = item.code if item else ""
        for s in dict.fromkeys((*CHECK_STATUSES, check.status)):
            checks.add_metric([check.item, code, s], 1.0 if check.status == s else 0.0)
        days = check.values.get("days_to_due")
        if isinstance(days, int | float) and not isinstance(days, bool):
            due.add_metric([check.item], float(days))
    broker = GaugeMetricFamily(
        "roomguard_api_broker_connected", "1 while the API's live view is connected to the MQTT broker."
    )
    broker.add_metric([], 1.0 if snap.connected else 0.0)
    received = CounterMetricFamily("roomguard_api_bus_messages", "Bus messages the live view received.")
    received.add_metric([], snap.messages)
    rejected = CounterMetricFamily(
        "roomguard_api_bus_rejected", "Bus messages the live view dropped for breaking the wire contract."
    )
    rejected.add_metric([], snap.rejected)
    yield from (
        duration,
        quality,
        age,
        online,
        by_quality,
        collectors,
        checks,
        due,
        broker,
        received,
        rejected,
    )


def process_families(procs: Iterable[ProcessFigures]) -> Iterator[Metric]:
    """Series of the state directory's process snapshots (what `roomguard status` reads)."""
    up = GaugeMetricFamily(
        "roomguard_process_up",
        "1 while the process runs (its snapshot is fresh and its pid alive), else 0.",
        labels=["process"],
    )
    depth = GaugeMetricFamily(
        "roomguard_outbox_depth", "Messages in the collector's outbox until ingest confirms them stored."
    )
    lag = GaugeMetricFamily(
        "roomguard_ingest_lag_seconds",
        "Age of the oldest reading in the collector's outbox the database has not confirmed.",
    )
    dropped = CounterMetricFamily(
        "roomguard_outbox_dropped", "Messages the collector's outbox dropped (bounds)."
    )
    backlog = GaugeMetricFamily(
        "roomguard_ingest_backlog", "Messages ingest received and has not written yet.", labels=["process"]
    )
    last_write = GaugeMetricFamily(
        "roomguard_ingest_last_write_age_seconds",
        "Seconds since ingest's last database write.",
        labels=["process"],
    )
    for p in procs:
        up.add_metric([p.name], 1.0 if p.state == "running" else 0.0)
        if p.name == "collector":
            if p.outbox_depth is not None:
                depth.add_metric([], p.outbox_depth)
            if p.outbox_oldest_age_s is not None:
                lag.add_metric([], p.outbox_oldest_age_s)
            if p.outbox_dropped is not None:
                dropped.add_metric([], p.outbox_dropped)
        if p.backlog is not None:
            backlog.add_metric([p.name], p.backlog)
        if p.last_write_age_s is not None:
            last_write.add_metric([p.name], p.last_write_age_s)
    yield from (up, depth, lag, dropped, backlog, last_write)


def alert_families(counts: AlertCounts) -> Iterator[Metric]:
    """Firing alerts per state (open, acknowledged, silenced) and severity."""
    family = GaugeMetricFamily(
        "roomguard_alerts",
        "Firing alerts: open (all of them), acknowledged, silenced (silence or maintenance window).",
        labels=["state", "severity"],
    )
    for state, by_severity in (
        ("open", counts.open),
        ("acknowledged", counts.acknowledged),
        ("silenced", counts.silenced),
    ):
        for severity in dict.fromkeys((*SEVERITIES, *by_severity)):
            family.add_metric([state, severity], by_severity.get(severity, 0))
    yield family


class RoomguardCollector(Collector):
    """Everything /metrics shows, gathered afresh at each scrape (blocking: scrape in a worker thread)."""

    def __init__(self, ctx: AppContext, live: LiveSource) -> None:
        self.ctx = ctx
        self.live = live

    def collect(self) -> Iterator[Metric]:
        """The families of one scrape."""
        yield from live_families(self.live.snapshot())
        now: datetime = self.ctx.clock()
        yield from process_families(state_dir_figures(self.ctx.state_dir, now))
        yield from alert_families(alert_counts(self.ctx.engine))


def registry_for(ctx: AppContext, live: LiveSource | None) -> CollectorRegistry:
    """A registry of this app alone holding its collector (no process or platform collectors: the
    scrape is about the room, and `auto_describe` off so registering does not scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RoomguardCollector(ctx, live if live is not None else StaticLive()))
    return registry


def _scrape(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    # The format the scraper asks for: OpenMetrics for a Prometheus that prefers it, else text 0.0.4.
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(registry), headers={"Content-Type": content_type})


def install_metrics(app: FastAPI, public: bool) -> None:
    """Add the /metrics route to `app`: anonymous when `public` (api.metrics_public), else it needs
    status.read. On the app itself, not in a shared router, since each app decides."""
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "content": {"text/plain": {}, "application/openmetrics-text": {}},
            "description": "Prometheus text format 0.0.4, or OpenMetrics when the Accept header asks.",
        },
    }
    if not public:
        responses[401] = {"model": ErrorBody, "description": "Not logged in (send a Bearer token)."}
        responses[403] = {"model": ErrorBody, "description": "Needs status.read (every role)."}
    description = "Prometheus metrics of the room and the box. Prometheus 監控指標。"

    async def metrics_public(request: Request) -> Response:
        return await run_in_threadpool(_scrape, request)

    async def metrics(
        request: Request, _: Annotated[Principal, Depends(require(Permission.STATUS_READ))]
    ) -> Response:
        return await run_in_threadpool(_scrape, request)

    app.add_api_route(
        METRICS_PATH,
        metrics_public if public else metrics,
        methods=["GET"],
        response_class=Response,
        responses=responses,
        summary="Metrics",
        description=description,
        tags=["metrics"],
    )
