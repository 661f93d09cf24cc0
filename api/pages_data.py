"""What the pages show, in small view models in the page's language; no HTML here. The data comes from
the same functions the REST routes answer with (the live snapshot, api.routes_alerts' AlertService,
api.routes_board's board, test schedule and duty operator, compliance.access.store), so a page and the
JSON API never disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from alerts.lifecycle import AlertView
from alerts.service import AlertService
from api import routes_alerts
from api.context import AppContext
from api.live_model import DeviceLive, LiveSnapshot, MetricLive
from api.routes_board import BoardOut, DutyOut, PastTest, ScheduleOut, duty_now
from compliance.access.store import AccessStore
from records.db import session_factory
from siteconfig.config import SiteConfig

STALE_POLLS = 3  # a device is stale when its newest reading is older than this many poll intervals
STALE_FLOOR = timedelta(seconds=30)  # … and never sooner than this (a fast poll jitters)


# -- services over the app's engine ------------------------------------------------------------


def alert_service(ctx: AppContext) -> AlertService:
    """The app's AlertService (api.routes_alerts builds and keeps it, as `roomguard alerts` builds it)."""
    return routes_alerts.alert_service(ctx)


def access_store(engine: Engine) -> AccessStore:
    """The access-review store over the app's engine."""
    return AccessStore(session_factory(engine))


# -- live readings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One reading as shown: name, value text, unit, quality."""

    name: str
    value: str
    unit: str
    quality: str


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One device with its newest reading: quality, age in seconds (None: no reading), stale."""

    device: str
    name: str
    device_class: str
    zone: str | None
    rack: str | None
    quality: str
    age_s: int | None
    stale: bool
    metrics: tuple[MetricRow, ...]
    status: str | None

    @property
    def no_data(self) -> bool:
        """Nothing arrived yet."""
        return self.age_s is None


@dataclass(frozen=True, slots=True)
class RackCell:
    """A rack on the floor view and the devices in it."""

    rack: str
    devices: tuple[DeviceRow, ...]


@dataclass(frozen=True, slots=True)
class ZoneView:
    """A zone of a room: its racks, and devices placed in the zone but in no rack."""

    zone: str
    name: str
    racks: tuple[RackCell, ...]
    loose: tuple[DeviceRow, ...]


@dataclass(frozen=True, slots=True)
class RoomView:
    """A room: every device (site-file order) and the floor view by zone."""

    room: str
    name: str
    devices: tuple[DeviceRow, ...]
    zones: tuple[ZoneView, ...]
    unzoned: tuple[DeviceRow, ...]


def value_text(value: object) -> str:
    """A reading's value for people: floats to one decimal, booleans as 1/0, none as '—'."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _metric(name: str, m: MetricLive) -> MetricRow:
    return MetricRow(name, value_text(m.value), m.unit or "", m.quality)


def _poll_interval(site: SiteConfig | None, device: str) -> timedelta:
    if site is None:
        return timedelta(seconds=5)
    for d in site.devices:
        if d.id == device:
            return timedelta(seconds=d.poll_interval_s or site.defaults.poll_interval_s)
    return timedelta(seconds=site.defaults.poll_interval_s)


def device_row(live: DeviceLive, now: datetime, interval: timedelta) -> DeviceRow:
    """A device's newest state as a row: its age, and stale when older than a few poll intervals."""
    age = None if live.at is None else max(0, int((now - live.at).total_seconds()))
    limit = max(STALE_FLOOR, interval * STALE_POLLS)
    stale = age is not None and age > limit.total_seconds()
    metrics = tuple(_metric(n, m) for n, m in sorted(live.metrics.items()))
    return DeviceRow(
        live.device, live.name, live.device_class, live.zone, live.rack, live.quality, age, stale, metrics,
        live.status,
    )  # fmt: skip


def _placeholder(site: SiteConfig, device: str) -> DeviceLive | None:
    for d in site.devices:
        if d.id == device:
            return DeviceLive(d.id, d.name, "", d.room, d.zone, d.rack, d.profile)
    return None


def room_views(site: SiteConfig | None, snapshot: LiveSnapshot, now: datetime) -> list[RoomView]:
    """Every room with its devices and floor view: the site file's rooms, zones and racks with the live
    snapshot's readings (a device of the site file not heard from yet shows as no data)."""
    if site is None:
        rooms = sorted({d.room for d in snapshot.devices})
        return [_room(r, r, (), [d for d in snapshot.devices if d.room == r], now, None) for r in rooms]
    out = []
    for room in site.rooms:
        lives = []
        for d in site.devices:
            if d.room != room.id:
                continue
            live = snapshot.device(d.id) or _placeholder(site, d.id)
            if live is not None:
                lives.append(live)
        zones = tuple((z.id, z.name, tuple(z.racks)) for z in room.zones)
        out.append(_room(room.id, room.name, zones, lives, now, site))
    return out


def _room(
    room: str,
    name: str,
    zones: Sequence[tuple[str, str, tuple[str, ...]]],
    lives: Sequence[DeviceLive],
    now: datetime,
    site: SiteConfig | None,
) -> RoomView:
    rows = tuple(device_row(d, now, _poll_interval(site, d.device)) for d in lives)
    zone_views = []
    for zone_id, zone_name, racks in zones:
        in_zone = [r for r in rows if r.zone == zone_id]
        cells = tuple(RackCell(rack, tuple(r for r in rows if r.rack == rack)) for rack in racks)
        loose = tuple(r for r in in_zone if r.rack is None or r.rack not in racks)
        zone_views.append(ZoneView(zone_id, zone_name, cells, loose))
    known = {z[0] for z in zones}
    unzoned = tuple(r for r in rows if r.zone is None or r.zone not in known)
    return RoomView(room, name, rows, tuple(zone_views), unzoned)


# -- alerts ------------------------------------------------------------------------------------

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An open alert as the status page lists it."""

    id: int
    key: str
    rule: str
    severity: str
    room: str
    device: str
    since: datetime
    message: str
    forecast: str
    acked_by: str | None
    suppressed: str | None


def alert_text(texts: Mapping[str, object], what: str, lang: str) -> str:
    """One of an alert's texts (message, forecast, …) in the page's language ('' when it has none)."""
    by_lang = texts.get(what)
    if not isinstance(by_lang, Mapping):
        return ""
    return str(by_lang.get("en" if lang == "en" else "zh_TW", "") or "")


def alert_rows(alerts: Sequence[AlertView], lang: str) -> list[AlertRow]:
    """Firing alerts, worst severity first, then oldest first."""
    rows = [
        AlertRow(
            a.id or 0,
            a.key,
            a.rule_id,
            str(a.severity),
            a.labels.get("room", ""),
            a.labels.get("device", ""),
            a.started_at,
            alert_text(a.texts, "message", lang),
            alert_text(a.texts, "forecast", lang),
            a.acked_by,
            a.suppressed,
        )
        for a in alerts
        if a.state == "firing"
    ]
    return sorted(rows, key=lambda r: (SEVERITY_ORDER.get(r.severity, 9), r.since))


# -- the board and tests -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvidenceLink:
    """A pointer to what a board line rests on, with the record's API address when it is a record."""

    kind: str
    ref: str
    href: str | None


@dataclass(frozen=True, slots=True)
class BoardRow:
    """One CC-16000 item: code, title, status, reason, evidence."""

    item: str
    code: str
    title: str
    status: str
    reason: str
    evidence: tuple[EvidenceLink, ...]


def board_rows(board: BoardOut, lang: str) -> list[BoardRow]:
    """The board (api.routes_board.board_lines, as `roomguard compliance status`) in one language."""
    en = lang == "en"
    return [
        BoardRow(
            line.item,
            line.code,
            line.title_en if en else line.title_zh,
            line.status,
            line.reason_en if en else line.reason_zh,
            tuple(EvidenceLink(e.kind, e.ref, e.url) for e in line.evidence),
        )
        for line in board.lines
    ]


@dataclass(frozen=True, slots=True)
class DueRow:
    """A recurring test and where its cadence stands (overdue, due_soon, ok, unknown)."""

    code: str
    title: str
    due: datetime | None
    state: str
    reason: str


RECENT_TESTS = 10


def due_rows(schedule: ScheduleOut, lang: str) -> list[DueRow]:
    """The test schedule (api.routes_board.upcoming_tests), most urgent first, in one language."""
    en = lang == "en"
    return [
        DueRow(
            d.code, d.title_en if en else d.title_zh, d.next_due, d.state, d.reason_en if en else d.reason_zh
        )
        for d in schedule.due
    ]


def recent_tests(schedule: ScheduleOut) -> list[PastTest]:
    """The newest tests of the look-back period (`roomguard compliance tests`), newest first."""
    return list(reversed(schedule.recent))[:RECENT_TESTS]


# -- the duty roster ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DutyView:
    """Who is on duty now and next (api.routes_board.duty_now), and why nobody when nobody is."""

    now: DutyOut | None
    next: DutyOut | None
    reason: str


def duty(ctx: AppContext, room: str | None, lang: str) -> DutyView:
    """The duty operator of `room` (None: any room) on shift now and the next shift, from the roster."""
    found = duty_now(ctx, room)
    reason = (found.reason_en if lang == "en" else found.reason_zh) or ""
    return DutyView(found.on_duty, found.next, reason)


# -- the door display --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DoorState:
    """What the door shows of a room: open alerts by severity, the worst temperature and humidity."""

    room: str
    name: str
    alert_counts: tuple[tuple[str, int], ...] = ()
    worst_temp_c: float | None = None
    worst_rh_pct: float | None = None
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    live: bool = True  # False: no link to the broker or nothing heard from the room (OK is not known)

    @property
    def alerting(self) -> bool:
        """True with any open alert."""
        return any(n for _, n in self.alert_counts)


# Room air, as the environment check reads it (not coolant, oil or battery temperatures).
TEMP_METRICS = ("temp_c", "rack_inlet_temp_c", "return_air_temp_c", "ambient_temp_c")
RH_METRICS = ("rh_pct", "humidity_rel")


def _worst(devices: Sequence[DeviceLive], names: Sequence[str]) -> float | None:
    values = [
        float(m.value)
        for d in devices
        for n, m in d.metrics.items()
        if n in names
        and m.quality == "good"
        and isinstance(m.value, int | float)
        and not isinstance(m.value, bool)
    ]
    return max(values) if values else None


def door_state(
    room: str,
    name: str,
    snapshot: LiveSnapshot,
    alerts: Sequence[AlertView],
    now: datetime,
    exclude: frozenset[str] = frozenset(),
) -> DoorState:
    """A room's state for the door: firing alerts of the room counted by severity, the worst readings
    (devices in `exclude`, the hot-aisle probes the environment check leaves out, not counted)."""
    counts: dict[str, int] = {}
    for a in alerts:
        if a.state == "firing" and a.labels.get("room") == room:
            counts[str(a.severity)] = counts.get(str(a.severity), 0) + 1
    ordered = tuple(sorted(counts.items(), key=lambda kv: SEVERITY_ORDER.get(kv[0], 9)))
    devices = [d for d in snapshot.devices if d.room == room and d.device not in exclude]
    live = snapshot.connected and any(d.at is not None for d in devices)
    return DoorState(
        room, name, ordered, _worst(devices, TEMP_METRICS), _worst(devices, RH_METRICS), now, live
    )
