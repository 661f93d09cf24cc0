# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The CC-16000 evidence pack of a period: XLSX, CSV and a bilingual PDF, a SHA-256 manifest, one zip.

What TWSE's inspector receives for [start, end) (`roomguard compliance SITE evidence-pack`):

* ``board.xlsx``, ``csv/board.csv``, ``csv/check_history.csv``: the board at the end of the period and
  every stored result change within it (with the result in force at its start);
* ``records.xlsx``, ``csv/<kind>.csv``: the records of every kind overlapping the period, void ones
  marked void;
* ``environment.xlsx``, ``csv/environment.csv``, ``csv/environment_daily.csv``: per room and month the
  share of samples inside the site's ASHRAE envelopes and min/avg/max, and the daily profile (from
  InfluxDB; without one, or when it does not answer, a row that says so instead);
* ``audit.xlsx``, ``csv/audit.csv``, ``csv/audit_verification.csv``: the audit entries of the period
  and the verification of the whole chain;
* ``summary.pdf``: all of it for people, in Traditional Chinese with English, with sign-off;
* ``MANIFEST.sha256`` over every file.

The pack is built in a temporary folder next to the target, zipped (deterministically: the same data
and `now` give the same bytes) and moved into place in one rename, so a failure leaves no half-written
zip and the previous pack at that path, if any, untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import and_, or_, select

from compliance.board import BoardLine, TimelineEntry, latest_board, timeline
from compliance.envelope import (
    DayProfile,
    DayStore,
    Envelope,
    EnvelopeMonth,
    envelope,
    envelope_days,
    month_windows,
    months_of,
    profiles_of,
)
from compliance.envelope_store import EnvelopeDays
from compliance.export import (
    Column,
    DayStats,
    PdfReport,
    Table,
    band_chart,
    timeline_chart,
    write_csv,
    write_manifest,
    write_workbook,
    write_zip,
)
from compliance.export.charts import Band
from compliance.export.tables import DATETIME_FORMAT
from compliance.influxql import InfluxQL, InfluxQueryError
from compliance.items import BY_KEY
from compliance.kinds import KINDS, Drill, GeneratorTest, Incident, Inspection, RecordModel, UpsTest, labels
from compliance.result import Status
from compliance.store import CheckResultAt, RecordRow, Records
from records.audit import AuditEntry, AuditReport, iter_entries, verify
from siteconfig.config import SiteConfig
from siteconfig.secrets import SecretError

Progress = Callable[[str], None]
# (step, of steps, message) for each numbered step: what a progress bar needs, without parsing text.
StepHook = Callable[[int, int, str], None]
STEPS = 6
_STEP = re.compile(r"^(\d+)/(\d+) ")
M = TypeVar("M", bound=RecordModel)

# Short: the PDF's footer repeats site and title beside the page count on every page.
TITLE_ZH = "CC-16000 查核佐證包"
TITLE_EN = "Evidence pack"
CONTROL = "TWSE CC-16000 實體及環境安全 Physical and environmental security"
BOARD_XLSX = "board.xlsx"
RECORDS_XLSX = "records.xlsx"
ENVIRONMENT_XLSX = "environment.xlsx"
AUDIT_XLSX = "audit.xlsx"
SUMMARY_PDF = "summary.pdf"
CSV_DIR = "csv"
# A timeline chart grows a label row per crowded event; beyond this many events one chart per month
# (and per this many events) keeps every chart on one page.
TIMELINE_CHART_MAX = 40
NO_ENV = "無環境資料 / no environmental data"

_KIND_SHORT = {
    GeneratorTest.KIND: "發電機 generator",
    UpsTest.KIND: "UPS",
    Inspection.KIND: "檢查 inspection",
    Drill.KIND: "演練 drill",
}
_PROBLEM_ZH = {"edited": "遭修改", "deleted": "遭刪除", "relinked": "鏈結不符", "head": "鏈頭不符"}


@dataclass(frozen=True, slots=True)
class _Pack:
    """What every part of the pack shares: site, period, zone, clock, preparer."""

    site: SiteConfig
    start: datetime
    end: datetime
    now: datetime
    tz: ZoneInfo
    prepared_by: str

    @property
    def period(self) -> str:
        return period_text(self.start, self.end, self.tz)

    def cover(self, contents: str) -> list[tuple[str, str]]:
        """The key/value cover sheet of every workbook."""
        return [
            ("控制項 Control", CONTROL),
            ("場域 Site", f"{self.site.site.name} ({self.site.site.id})"),
            ("期間 Period", self.period),
            (
                "產製時間 Generated at",
                f"{self.now.astimezone(self.tz).strftime(DATETIME_FORMAT)} ({self.tz.key})",
            ),
            ("製表人 Prepared by", self.prepared_by),
            ("內容 Contents", contents),
        ]


def period_text(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """[start, end) as people read it: whole local days as 'first to last day', else times, with the zone."""
    lo, hi = start.astimezone(tz), end.astimezone(tz)
    if lo.time() == time(0) and hi.time() == time(0):
        last = hi.date() - timedelta(days=1)
        return f"{lo.date().isoformat()} – {last.isoformat()} ({tz.key})"
    times = f"{lo.strftime('%Y-%m-%d %H:%M')} – {hi.strftime('%Y-%m-%d %H:%M')}"
    return f"{times} ({tz.key}, 不含結束時間 end excluded)"


async def build_pack(
    site: SiteConfig,
    records: Records,
    start: datetime,
    end: datetime,
    target_zip: Path,
    *,
    prepared_by: str,
    progress: Progress = lambda _: None,
    now: datetime | None = None,
    on_step: StepHook | None = None,
) -> Path:
    """Build the evidence pack of [start, end) as the zip `target_zip` (replaced atomically); its path.

    `progress` gets every line of the log; `on_step` (optional) each numbered step as (n, STEPS, line).
    """
    if on_step is not None:
        progress = _with_steps(progress, on_step)
    for name, value in (("start", start), ("end", end), ("now", now)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(f"{name} {value.isoformat()} is naive: give a time zone")
    if end <= start:
        raise ValueError(f"the period ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    pack = _Pack(site, start, end, now or datetime.now(UTC), ZoneInfo(site.site.timezone), prepared_by)
    target = Path(target_zip)
    began = clock.monotonic()
    progress(f"佐證包 evidence pack {site.site.id} {pack.period} → {target}")
    work = await asyncio.to_thread(_work_folder, target)
    try:
        folder = work / "pack"
        await _build_folder(pack, records, folder, progress)
        progress("6/6 清單及壓縮 MANIFEST.sha256 over every file, zip verified against it")
        size = await asyncio.to_thread(_seal, folder, work / target.name, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"完成 done in {clock.monotonic() - began:.1f} s: {target} ({size:,} bytes)")
    return target


def _with_steps(progress: Progress, on_step: StepHook) -> Progress:
    def both(line: str) -> None:
        progress(line)
        m = _STEP.match(line)
        if m:
            on_step(int(m.group(1)), int(m.group(2)), line)

    return both


def day_period(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of whole local days `first` to `last` inclusive (as `--from`/`--to` mean them)."""
    if last < first:
        raise ValueError(f"the period ends ({last.isoformat()}) before it starts ({first.isoformat()})")
    try:  # the first day's start and the day after the last, in UTC (as the records are kept)
        start, end = (
            datetime.combine(first, time(0), tz),
            datetime.combine(last + timedelta(days=1), time(0), tz),
        )
        start.astimezone(UTC), end.astimezone(UTC)
        if last.year == MAXYEAR and last.month == 12:  # the pack reports by month: the next one must exist
            raise OverflowError
    except OverflowError:
        raise ValueError(
            f"超出範圍 the period {first.isoformat()} to {last.isoformat()} is out of range"
        ) from None
    return start, end


def _work_folder(target: Path) -> Path:
    """A fresh temporary folder beside the target, with the pack's own folder in it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Next to the target: the final rename stays on one file system, so it is atomic.
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    (work / "pack").mkdir()
    return work


def _seal(folder: Path, staged: Path, target: Path) -> int:
    """Manifest, zip (write_zip verifies it), then the one rename that publishes it; the zip's size."""
    write_manifest(folder)
    write_zip(staged, folder)
    with staged.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(staged, target)
    _fsync_dir(target.parent)
    return target.stat().st_size


async def _build_folder(pack: _Pack, records: Records, folder: Path, progress: Progress) -> None:
    csv_dir = folder / CSV_DIR

    progress("1/6 看板 board: results at the end of the period, result changes within it")
    # Database reads off the event loop too: verifying a long audit chain takes seconds.
    board = await asyncio.to_thread(latest_board, records, until=pack.end)
    history = await asyncio.to_thread(records.check_history, since=pack.start, until=pack.end)
    board_tables = [board_table(board), check_history_table(history, pack.start)]
    await _write_tables(
        pack, folder / BOARD_XLSX, csv_dir, board_tables, "CC-16000 看板 board; 結果變更 result changes"
    )

    progress("2/6 紀錄 records of every kind overlapping the period")
    kind_rows = await asyncio.to_thread(period_rows, records, pack.start, pack.end)
    record_tables = [record_table(KINDS[k], rows) for k, rows in kind_rows.items()]
    for k, rows in kind_rows.items():
        if rows:
            progress(f"    {k}: {len(rows)}")
    await _write_tables(pack, folder / RECORDS_XLSX, csv_dir, record_tables, "各類紀錄 records by kind")

    progress("3/6 環境 environment: ASHRAE shares per room and month (InfluxDB)")
    kept = EnvelopeDays(records.sessions)
    env = await environment_data(pack.site, pack.start, pack.end, progress, kept, pack.now)
    env_tables = [environment_table(pack.site, env), daily_table(pack.site, env)]
    await _write_tables(
        pack, folder / ENVIRONMENT_XLSX, csv_dir, env_tables, "溫濕度 temperature and humidity"
    )

    progress("4/6 稽核軌跡 audit log: entries of the period, verification of the whole chain")
    entries, report = await asyncio.to_thread(audit_data, records, pack.start, pack.end)
    progress(f"    {len(entries)} entries; chain {'ok 完整' if report.ok else 'BROKEN 已遭破壞'}")
    audit_tables = [audit_table(entries, report), verification_table(report)]
    await _write_tables(pack, folder / AUDIT_XLSX, csv_dir, audit_tables, "稽核軌跡 audit log excerpt")

    progress("5/6 報告 summary.pdf")
    summary = Summary(
        board=board,
        history=len(history),
        kind_rows=kind_rows,
        events=await asyncio.to_thread(timeline, records, pack.start, pack.end),
        generator_tests=live(kind_rows, GeneratorTest),
        ups_tests=live(kind_rows, UpsTest),
        inspections=live(kind_rows, Inspection),
        drills=live(kind_rows, Drill),
        # Open reviews that began before the period are in it too: period_rows keeps open-ended rows.
        incidents=live(kind_rows, Incident),
        env=env,
        entries=entries,
        report=report,
    )
    report_pdf = summary_report(pack, summary)
    await asyncio.to_thread(report_pdf.build, folder / SUMMARY_PDF)


async def _write_tables(
    pack: _Pack, xlsx: Path, csv_dir: Path, tables: Sequence[Table], contents: str
) -> None:
    def write() -> None:
        write_workbook(xlsx, tables, pack.tz, cover=pack.cover(contents), timestamp=pack.now)
        for t in tables:
            write_csv(csv_dir / f"{t.name}.csv", t, pack.tz)

    # Off the event loop: a half-year workbook takes seconds, and the caller may serve other work.
    await asyncio.to_thread(write)


def _fsync_dir(path: Path) -> None:
    # The rename itself must survive a crash, not only the zip's bytes (where a folder can be synced).
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- board


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _evidence_refs(line: BoardLine | CheckResultAt) -> list[str]:
    result = line.result
    if result is None:
        return []
    return [f"{e.kind}:{e.ref}" + (f" ({e.note})" if e.note else "") for e in result.evidence]


BOARD_COLUMNS = (
    Column("code", "條文", "Clause"),
    Column("item", "項目代碼", "Item key"),
    Column("title_zh", "項目", "Item (zh)"),
    Column("title_en", "項目（英文）", "Item"),
    Column("status", "結果", "Status"),
    Column("reason_zh", "說明", "Reason (zh)", width=50),
    Column("reason_en", "說明（英文）", "Reason", width=50),
    Column("evaluated_at", "評估時間", "Evaluated at"),
    Column("last_evidence_at", "最近佐證", "Last evidence"),
    Column("next_due", "下次到期", "Next due"),
    Column("evidence", "佐證紀錄", "Evidence references", width=50),
)


def board_table(board: Sequence[BoardLine]) -> Table:
    """One line per item: the newest result stored before the end of the period."""
    rows: list[dict[str, object]] = []
    for line in board:
        j = line.to_json()  # its words for an item never evaluated
        r = line.result
        rows.append(
            {
                **{
                    k: j[k]
                    for k in ("code", "item", "title_zh", "title_en", "status", "reason_zh", "reason_en")
                },
                "evaluated_at": line.at,
                "last_evidence_at": r.last_evidence_at if r else None,
                "next_due": r.next_due if r else None,
                "evidence": _evidence_refs(line),
            }
        )
    return Table("board", "CC-16000 看板", "CC-16000 board at the end of the period", BOARD_COLUMNS, rows)


def check_history_table(history: Sequence[CheckResultAt], start: datetime) -> Table:
    """Every stored result change in the period, and the result in force when it began."""
    columns = [
        Column("at", "變更時間", "Changed at"),
        Column("in_force", "期初狀態", "In force at the start"),
        *(c for c in BOARD_COLUMNS if c.key not in ("evaluated_at",)),
    ]
    rows: list[dict[str, object]] = []
    for h in history:
        r = h.result
        item = BY_KEY.get(r.item)  # a retired item keeps its key, without titles
        rows.append(
            {
                "at": h.at,
                "in_force": h.at < start,
                "code": item.code if item else None,
                "item": r.item,
                "title_zh": item.title_zh if item else None,
                "title_en": item.title_en if item else None,
                "status": r.status,
                "reason_zh": r.reason_zh,
                "reason_en": r.reason_en,
                "last_evidence_at": r.last_evidence_at,
                "next_due": r.next_due,
                "evidence": _evidence_refs(h),
            }
        )
    return Table("check_history", "結果變更紀錄", "Check result changes", columns, rows)


# -- records


def period_rows(records: Records, start: datetime, end: datetime) -> dict[str, list[RecordRow]]:
    """Per kind (every kind, in KINDS order) the rows overlapping [start, end), void ones included."""
    out: dict[str, list[RecordRow]] = {}
    with records.sessions() as s:
        for name, model in KINDS.items():
            overlaps = [RecordRow.at >= start, RecordRow.until >= start]
            if model.UNTIL is not None:
                # Still open (an incident not resolved, a rack in use, a visitor not out): it overlaps
                # every period after its start. store.rows compares `until` and so would leave it out.
                overlaps.append(RecordRow.until.is_(None))
            q = (
                select(RecordRow)
                .where(and_(RecordRow.kind == name, RecordRow.at < end, or_(*overlaps)))
                .order_by(RecordRow.at, RecordRow.id)
            )
            out[name] = list(s.scalars(q))
    return out


def live(kind_rows: dict[str, list[RecordRow]], model: type[M]) -> list[M]:
    """The kind's rows that are not void, as records (records.xlsx shows one that no longer validates)."""
    out = []
    for row in kind_rows.get(model.KIND, []):
        if row.voided_at is None:
            try:
                out.append(model.model_validate(row.data))
            except ValidationError:
                continue
    return out


RECORD_EXTRA_BEFORE = (Column("record_ref", "紀錄鍵值", "Record key (ref)"),)
RECORD_EXTRA_AFTER = (
    Column("record_version", "版次", "Version"),
    Column("void", "作廢", "Void"),
    Column("void_reason", "作廢原因", "Void reason"),
    Column("voided_at", "作廢時間", "Voided at"),
    Column("voided_by", "作廢人", "Voided by"),
    Column("created_at", "建立時間", "Created at"),
    Column("created_by", "建立人", "Created by"),
    Column("updated_at", "更新時間", "Updated at"),
    Column("updated_by", "更新人", "Updated by"),
)


def record_table(model: type[RecordModel], rows: Sequence[RecordRow]) -> Table:
    """A kind's rows: its fields (zh and en labels), then version, void state and who wrote them when."""
    fields = labels(model)
    columns = [*RECORD_EXTRA_BEFORE, *(Column(n, zh, en) for n, zh, en in fields), *RECORD_EXTRA_AFTER]
    out: list[dict[str, object]] = []
    for row in rows:
        try:
            record = model.model_validate(row.data)
            values: dict[str, object] = {n: getattr(record, n) for n, _, _ in fields}
        except ValidationError:
            # Written under an older schema: shown as stored rather than dropped from the evidence.
            values = {n: row.data.get(n) for n, _, _ in fields}
        out.append(
            {
                "record_ref": row.ref,
                **values,
                "record_version": row.version,
                "void": row.voided_at is not None,
                "void_reason": row.void_reason,
                "voided_at": row.voided_at,
                "voided_by": row.voided_by,
                "created_at": row.created_at,
                "created_by": row.created_by,
                "updated_at": row.updated_at,
                "updated_by": row.updated_by,
            }
        )
    return Table(model.KIND, model.ZH, model.EN, columns, out)


# -- environment


@dataclass(frozen=True, slots=True)
class EnvData:
    """The environmental part: months and days from InfluxDB, or why there are none (`missing`)."""

    recommended: Envelope
    allowable: Envelope
    windows: list[tuple[date, datetime, datetime]]  # (month, from, to) of each month of the period
    months: list[EnvelopeMonth] = field(default_factory=list)
    days: list[DayProfile] = field(default_factory=list)
    missing: str | None = None
    excluded: list[str] = field(default_factory=list)  # env sensors not at an inlet, left out


def site_envelopes(site: SiteConfig) -> tuple[Envelope, Envelope]:
    """The (recommended, allowable) envelopes the site holds its rooms to."""
    cfg = site.compliance.environment
    return envelope(cfg.recommended, cfg.rh_max_pct), envelope(cfg.allowable)


async def environment_data(
    site: SiteConfig,
    start: datetime,
    end: datetime,
    progress: Progress,
    store: DayStore | None = None,
    now: datetime | None = None,
) -> EnvData:
    """Monthly shares and daily profiles from the site's InfluxDB; `missing` says why there are none.

    With a `store` (and `now`), days measured before and still matching the database are reused
    (compliance.envelope.envelope_days); the result is the same either way.
    """
    rec, allow = site_envelopes(site)
    tz = ZoneInfo(site.site.timezone)
    windows = month_windows(start, end, tz)
    excluded = site.compliance.environment.exclude_devices

    def without(why: str) -> EnvData:
        return EnvData(rec, allow, windows, missing=f"{NO_ENV}: {why}", excluded=excluded)

    if site.influxdb is None:
        return without("場域設定未設定 InfluxDB (site file has no influxdb section)")
    try:
        client = InfluxQL.from_site(site)
    except (SecretError, ValueError) as exc:
        return without(f"InfluxDB 設定無法使用 (cannot use the influxdb settings): {exc}")
    try:
        async with client:
            days = await envelope_days(
                client, site.site.id, start, end, tz, [rec, allow], excluded=excluded, store=store, now=now
            )
    except InfluxQueryError as exc:
        # The pack is still worth having without the environment; it must say so, not fail.
        return without(f"InfluxDB {site.influxdb.url} 無法查詢 (unreachable or failed): {exc}")
    months = months_of(days, start, end, tz, [rec, allow])
    progress(f"    {len(months)} room-months, {len(days)} room-days")
    if not months:
        return without("期間內 InfluxDB 無溫濕度樣本 (no env samples in the period)")
    return EnvData(rec, allow, windows, months, profiles_of(days), excluded=excluded)


def _pct(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 2)


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _room_names(site: SiteConfig) -> dict[str, str]:
    return {r.id: r.name for r in site.rooms}


def environment_table(site: SiteConfig, env: EnvData) -> Table:
    """Per room and month: the share inside each envelope (dry bulb, humidity, both) and min/avg/max."""
    rec, allow = env.recommended, env.allowable
    share_cols = []
    for key, e, zh in (("rec", rec, "建議"), ("allow", allow, "允許")):
        share_cols += [
            Column(f"{key}_temp_pct", f"{zh}範圍內 % 乾球溫度", f"Inside {e.name} %, dry bulb"),
            Column(f"{key}_humidity_pct", f"{zh}範圍內 % 濕度", f"Inside {e.name} %, humidity"),
            Column(f"{key}_both_pct", f"{zh}範圍內 % 兩者", f"Inside {e.name} %, both"),
        ]
    columns = [
        Column("room", "機房代碼", "Room id"),
        Column("room_name", "機房", "Room"),
        Column("month", "月份", "Month"),
        Column("from", "起", "From"),
        Column("to", "迄（不含）", "To (excluded)"),
        Column("samples", "溫度樣本數", "Temperature samples"),
        Column("humidity_samples", "濕度樣本數", "Humidity samples"),
        *share_cols,
        Column("temp_min", "最低溫度 °C", "Min temperature °C"),
        Column("temp_avg", "平均溫度 °C", "Avg temperature °C"),
        Column("temp_max", "最高溫度 °C", "Max temperature °C"),
        Column("rh_min", "最低濕度 %", "Min RH %"),
        Column("rh_avg", "平均濕度 %", "Avg RH %"),
        Column("rh_max", "最高濕度 %", "Max RH %"),
        Column("note", "備註", "Note", width=60),
    ]
    names = _room_names(site)
    rows: list[dict[str, object]] = []
    if env.missing:
        rows.append({"note": env.missing})
    for m in env.months:
        row: dict[str, object] = {
            "room": m.room,
            "room_name": names.get(m.room),
            "month": m.month.strftime("%Y-%m"),
            "from": m.start,
            "to": m.end,
            "samples": m.samples,
            "humidity_samples": m.humidity_samples,
            "temp_min": _r(m.temp_min),
            "temp_avg": _r(m.temp_avg),
            "temp_max": _r(m.temp_max),
            "rh_min": _r(m.rh_min),
            "rh_avg": _r(m.rh_avg),
            "rh_max": _r(m.rh_max),
        }
        for key, e in (("rec", rec), ("allow", allow)):
            s = m.share(e.name)
            row |= {
                f"{key}_temp_pct": _pct(s.temp),
                f"{key}_humidity_pct": _pct(s.humidity),
                f"{key}_both_pct": _pct(s.both),
            }
        rows.append(row)
    if not env.missing:
        # A configured room without samples in a month is a row too: a gap must show, not vanish.
        have = {(m.room, m.month) for m in env.months}
        rows += [
            {
                "room": r.id,
                "room_name": r.name,
                "month": month.strftime("%Y-%m"),
                "from": lo,
                "to": hi,
                "samples": 0,
                "humidity_samples": 0,
                "note": f"{NO_ENV}: 無樣本 no samples",
            }
            for month, lo, hi in env.windows
            for r in site.rooms
            if (r.id, month) not in have
        ]
        order = {r.id: i for i, r in enumerate(site.rooms)}
        rows.sort(key=lambda r: (str(r["month"]), order.get(str(r["room"]), len(order)), str(r["room"])))
    if env.excluded:
        rows.insert(
            0, {"note": f"不計入（非進風口感測器） not inlet sensors, left out: {', '.join(env.excluded)}"}
        )
    return Table("environment", "溫濕度月統計", "Temperature and humidity by room and month", columns, rows)


def daily_table(site: SiteConfig, env: EnvData) -> Table:
    """Per room and local day: min/avg/max temperature and RH (what the PDF's charts draw)."""
    columns = [
        Column("room", "機房代碼", "Room id"),
        Column("room_name", "機房", "Room"),
        Column("day", "日期", "Day"),
        Column("samples", "溫度樣本數", "Temperature samples"),
        Column("temp_min", "最低溫度 °C", "Min temperature °C"),
        Column("temp_avg", "平均溫度 °C", "Avg temperature °C"),
        Column("temp_max", "最高溫度 °C", "Max temperature °C"),
        Column("rh_min", "最低濕度 %", "Min RH %"),
        Column("rh_avg", "平均濕度 %", "Avg RH %"),
        Column("rh_max", "最高濕度 %", "Max RH %"),
        Column("note", "備註", "Note", width=60),
    ]
    names = _room_names(site)
    rows: list[dict[str, object]] = [{"note": env.missing}] if env.missing else []
    rows += [
        {
            "room": d.room,
            "room_name": names.get(d.room),
            "day": d.day,
            "samples": d.samples,
            "temp_min": _r(d.temp_min),
            "temp_avg": _r(d.temp_avg),
            "temp_max": _r(d.temp_max),
            "rh_min": _r(d.rh_min),
            "rh_avg": _r(d.rh_avg),
            "rh_max": _r(d.rh_max),
        }
        for d in env.days
    ]
    return Table(
        "environment_daily", "溫濕度日統計", "Temperature and humidity by room and day", columns, rows
    )


def _num(v: float) -> str:
    return f"{v:g}"


def chart_bands(rec: Envelope, allow: Envelope) -> tuple[list[Band], list[Band]]:
    """The site's envelopes as chart bands (temperature, RH): allowable first, drawn under recommended."""
    allow_c, rec_c = "#fff1c1", "#cdebd3"

    def rh_label(e: Envelope) -> str:
        lo = f"{_num(e.rh_min)}–" if e.rh_min is not None else "≤ "
        return f"{lo}{_num(e.rh_max)} %" if e.rh_max is not None else f"≥ {_num(e.rh_min or 0)} %"

    temp: list[Band] = [
        (
            allow.temp_min,
            allow.temp_max,
            f"ASHRAE {allow.name} 允許 allowable {_num(allow.temp_min)}–{_num(allow.temp_max)} °C",
            allow_c,
        ),
        (
            rec.temp_min,
            rec.temp_max,
            f"ASHRAE {rec.name} 建議 {_num(rec.temp_min)}–{_num(rec.temp_max)} °C",
            rec_c,
        ),
    ]
    rh: list[Band] = [
        (allow.rh_min, allow.rh_max, f"ASHRAE {allow.name} 允許 allowable {rh_label(allow)}", allow_c),
        (rec.rh_min, rec.rh_max, f"ASHRAE {rec.name} 建議 {rh_label(rec)}", rec_c),
    ]
    return temp, rh


def local_days(lo: datetime, hi: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """The first and last local day of [lo, hi)."""
    return lo.astimezone(tz).date(), (hi - timedelta(microseconds=1)).astimezone(tz).date()


# -- audit


AUDIT_COLUMNS = (
    Column("seq", "序號", "Seq"),
    Column("at", "時間", "At"),
    Column("actor", "人員", "Actor"),
    Column("source", "來源", "Source"),
    Column("action", "動作", "Action"),
    Column("entity", "對象", "Entity"),
    Column("entity_id", "對象鍵值", "Entity id"),
    Column("before", "變更前", "Before", width=60),
    Column("after", "變更後", "After", width=60),
    Column("note", "備註", "Note"),
    Column("prev_hash", "前筆雜湊", "Previous hash"),
    Column("hash", "雜湊", "Hash"),
    Column("chain", "鏈驗證", "Chain check"),
)


def audit_data(records: Records, start: datetime, end: datetime) -> tuple[list[AuditEntry], AuditReport]:
    """The audit entries of [start, end) and the verification of the whole chain, in one read."""
    with records.sessions() as s:
        return list(iter_entries(s, since=start, until=end)), verify(s)


def audit_table(entries: Sequence[AuditEntry], report: AuditReport) -> Table:
    """The audit entries of the period; `chain` is fail for an entry a verification problem names."""
    named = {p.seq for p in report.problems}
    rows: list[dict[str, object]] = [
        {
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "source": e.source,
            "action": e.action,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "before": _json_text(e.before),
            "after": _json_text(e.after),
            "note": e.note,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
            "chain": "fail" if e.seq in named else "pass",
        }
        for e in entries
    ]
    return Table("audit", "稽核軌跡", "Audit log entries of the period", AUDIT_COLUMNS, rows)


def chain_verdict(report: AuditReport) -> tuple[str, str]:
    """(zh, en) one-line verdict on the whole chain."""
    if report.ok:
        return (
            f"稽核鏈完整：已驗證 {report.entries} 筆，鏈頭序號 {report.head_seq}",
            f"audit chain intact: {report.entries} entries verified, head seq {report.head_seq}",
        )
    named = "; ".join(f"#{p.seq} {_PROBLEM_ZH.get(p.kind, p.kind)}" for p in report.problems)
    names_en = "; ".join(f"entry {p.seq} {p.kind}" for p in report.problems)
    return (
        f"稽核鏈已遭破壞：{len(report.problems)} 項問題（{named}）",
        f"audit chain BROKEN: {len(report.problems)} problem(s) ({names_en})",
    )


def verification_table(report: AuditReport) -> Table:
    """The whole chain's verification: the verdict, the head, then every problem naming its entry."""
    zh, en = chain_verdict(report)
    columns = [
        Column("check", "檢查", "Check"),
        Column("status", "結果", "Status"),
        Column("seq", "序號", "Seq"),
        Column("kind", "類型", "Kind"),
        Column("message", "說明", "Message", width=80),
    ]
    rows: list[dict[str, object]] = [
        {"check": "chain", "status": "pass" if report.ok else "fail", "message": f"{zh}\n{en}"},
        {"check": "entries", "seq": report.entries, "message": "驗證筆數 entries verified"},
        {"check": "head", "seq": report.head_seq, "message": report.head_hash},
    ]
    rows += [
        {"check": "problem", "status": "fail", "seq": p.seq, "kind": p.kind, "message": p.message}
        for p in report.problems
    ]
    return Table("audit_verification", "稽核鏈驗證", "Audit chain verification", columns, rows)


# -- summary.pdf


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything summary.pdf shows, gathered before it is laid out."""

    board: list[BoardLine]
    history: int
    kind_rows: dict[str, list[RecordRow]]
    events: list[TimelineEntry]
    generator_tests: list[GeneratorTest]
    ups_tests: list[UpsTest]
    inspections: list[Inspection]
    drills: list[Drill]
    incidents: list[Incident]
    env: EnvData
    entries: list[AuditEntry]
    report: AuditReport


# The PDF's test tables: short headers, so eight columns fit a portrait page (records.xlsx has every
# field under its full label).
DETAIL_COLUMNS: dict[str, tuple[Column, ...]] = {
    GeneratorTest.KIND: (
        Column("device", "設備", "Generator"),
        Column("started_at", "開始", "Started"),
        Column("on_load_minutes", "帶載分鐘", "Min. on load"),
        Column("min_load_pct", "最低負載 %", "Min load %"),
        Column("avg_load_pct", "平均負載 %", "Avg load %"),
        Column("trigger", "啟動原因", "Trigger"),
        Column("counts", "計入月測", "Counts"),
        Column("source", "來源", "Source"),
    ),
    UpsTest.KIND: (
        Column("device", "設備", "UPS"),
        Column("tested_at", "測試時間", "Tested at"),
        Column("test_type", "類型", "Type"),
        Column("result", "結果", "Result"),
        Column("started_by", "啟動來源", "Started by"),
        Column("source", "來源", "Source"),
    ),
    Inspection.KIND: (
        Column("system", "系統", "System"),
        Column("inspected_at", "檢查時間", "Inspected at"),
        Column("inspector", "檢查人", "Inspector"),
        Column("licence", "證照", "Licence"),
        Column("result", "結果", "Result"),
        Column("duration_s", "秒數", "Seconds"),
        Column("findings", "缺失", "Findings"),
    ),
    Drill.KIND: (
        Column("drill_id", "編號", "Drill"),
        Column("held_at", "演練時間", "Held at"),
        Column("plan", "復原計畫", "Plan"),
        Column("scenario", "情境", "Scenario"),
        Column("result", "結果", "Result"),
        Column("findings", "缺失", "Findings"),
    ),
}


def _pdf_value(v: object) -> object:
    # One decimal is what a reader of minutes and load % needs; the XLSX keeps the stored value.
    if isinstance(v, float):
        return round(v, 1)
    if isinstance(v, bool):
        return "是 yes" if v else "否 no"
    return v


def _detail_table(model: type[RecordModel], items: Sequence[RecordModel], status: dict[str, Status]) -> Table:
    columns = [*DETAIL_COLUMNS[model.KIND], Column("status", "判定", "Status")]
    rows = [
        {
            **{c.key: _pdf_value(getattr(r, c.key)) for c in columns[:-1]},
            "status": status.get(r.ref(), "unknown"),
        }
        for r in items
    ]
    return Table(model.KIND, model.ZH, model.EN, columns, rows)


def _timeline_status(events: Sequence[TimelineEntry], items: Sequence[RecordModel]) -> dict[str, Status]:
    """The timeline's status of each record by natural key (the board's own rule, not a second one)."""
    by_event = {(e.kind, e.at, e.subject): e.status for e in events}
    out: dict[str, Status] = {}
    for r in items:
        # The subject the timeline names each kind by: a device, a system or a drill id.
        subject = next((str(v) for n in ("device", "system", "drill_id") if (v := getattr(r, n, None))), "")
        found = by_event.get((r.KIND, r.record_at(), subject))
        if found is not None:
            out[r.ref()] = found
    return out


def incident_state(i: Incident, now: datetime) -> tuple[Status, str]:
    """Review state of an incident: closed (pass), open within its due date (warn) or overdue (fail)."""
    if i.closed_at is not None:
        return "pass", f"已結案 closed ({i.closed_by})"
    if i.due_at < now:
        return "fail", "逾期未結案 overdue"
    return "warn", "檢討中 open"


def incidents_table(incidents: Sequence[Incident], now: datetime) -> Table:
    """Incident reviews with cause, actions, owner, due date and whether (and when) they were closed."""
    # Widths as shares of the page: the measures need room, a name or a date little.
    columns = [
        Column("incident_id", "事件編號", "Incident", width=10),
        Column("started_at", "發生時間", "Started", width=11),
        Column("summary", "摘要", "Summary", width=14),
        Column("cause", "原因及措施", "Cause and actions", width=24),
        Column("owner", "負責人", "Owner", width=8),
        Column("due_at", "檢討期限", "Due", width=11),
        Column("closed_at", "結案時間", "Closed", width=11),
        Column("state", "檢討狀態", "Review state", width=15),
        Column("status", "判定", "Status", width=11),
    ]
    rows: list[dict[str, object]] = []
    for i in incidents:
        status, state = incident_state(i, now)
        measures = [
            f"原因 cause: {i.cause or '—'}",
            f"矯正 corrective: {i.corrective_action or '—'}",
            f"預防 preventive: {i.preventive_action or '—'}",
        ]
        rows.append(
            {
                "incident_id": i.incident_id,
                "started_at": i.started_at,
                "summary": i.summary,
                "cause": "\n".join(measures),
                "owner": i.owner,
                "due_at": i.due_at,
                "closed_at": i.closed_at,
                "state": state,
                "status": status,
            }
        )
    return Table("incidents", Incident.ZH, Incident.EN, columns, rows)


def _timeline_charts(report: PdfReport, events: Sequence[TimelineEntry], pack: _Pack) -> None:
    points = [(e.at, f"{_KIND_SHORT.get(e.kind, e.kind)} {e.subject}", str(e.status)) for e in events]
    title = "測試及檢查時間軸 Tests and inspections"
    if len(points) <= TIMELINE_CHART_MAX:
        report.drawing(
            timeline_chart(points, pack.start, pack.end, title, tz=pack.tz, width=report.frame_width)
        )
        return
    for month, lo, hi in month_windows(pack.start, pack.end, pack.tz):
        inside = [p for p in points if lo <= p[0] < hi]
        for n in range(0, max(1, len(inside)), TIMELINE_CHART_MAX):
            chunk = inside[n : n + TIMELINE_CHART_MAX]
            report.drawing(
                timeline_chart(chunk, lo, hi, f"{title} {month:%Y-%m}", tz=pack.tz, width=report.frame_width)
            )


def _environment_section(report: PdfReport, pack: _Pack, env: EnvData) -> None:
    report.heading("溫濕度", "Temperature and humidity (CC-16000 (三))")
    rec, allow = env.recommended, env.allowable
    report.paragraph(
        f"建議範圍 {rec.name}：{_num(rec.temp_min)}–{_num(rec.temp_max)} °C；允許範圍 {allow.name}："
        f"{_num(allow.temp_min)}–{_num(allow.temp_max)} °C（含露點及相對濕度限制）。"
        f"Recommended envelope {rec.name}, allowable {allow.name} (ASHRAE TC 9.9, dew point and RH limits "
        "included); shares are of samples (sensor-time)."
    )
    if env.missing:
        report.paragraph(env.missing)
        return
    names = _room_names(pack.site)
    columns = [
        Column("room", "機房", "Room"),
        Column("month", "月份", "Month"),
        Column("samples", "樣本數", "Samples"),
        Column("rec_both_pct", "建議範圍內 %", f"In {rec.name} %"),
        Column("allow_both_pct", "允許範圍內 %", f"In {allow.name} %"),
        Column("temp", "溫度 °C 低/均/高", "Temp °C min/avg/max"),
        Column("rh", "濕度 % 低/均/高", "RH % min/avg/max"),
    ]

    def triple(lo: float | None, avg: float | None, hi: float | None) -> str:
        return " / ".join("—" if v is None else f"{v:.1f}" for v in (lo, avg, hi))

    rows: list[dict[str, object]] = [
        {
            "room": names.get(m.room, m.room),
            "month": m.month.strftime("%Y-%m"),
            "samples": m.samples,
            "rec_both_pct": _pct(m.share(rec.name).both),
            "allow_both_pct": _pct(m.share(allow.name).both),
            "temp": triple(m.temp_min, m.temp_avg, m.temp_max),
            "rh": triple(m.rh_min, m.rh_avg, m.rh_max),
        }
        for m in env.months
    ]
    report.table(Table("environment", "溫濕度月統計", "By room and month", columns, rows))
    temp_bands, rh_bands = chart_bands(rec, allow)
    rooms = [r.id for r in pack.site.rooms]
    rooms += sorted({d.room for d in env.days} - set(rooms))
    for room in rooms:
        days = [d for d in env.days if d.room == room]
        report.heading(names.get(room, room), f"room {room}", level=2)
        if not days:
            report.paragraph(f"{NO_ENV}: 此機房期間內無樣本 (no samples of this room in the period)")
            continue
        for _, lo, hi in env.windows:
            first, last = local_days(lo, hi, pack.tz)
            month = [d for d in days if first <= d.day <= last]
            if not month:
                report.paragraph(f"{first:%Y-%m}: {NO_ENV} (no samples this month)")
                continue
            temps = [x for d in month if (x := _day_stats(d, "temp")) is not None]
            rhs = [x for d in month if (x := _day_stats(d, "rh")) is not None]
            label = f"{names.get(room, room)} {first:%Y-%m}"
            w = report.frame_width
            report.drawing(
                band_chart(
                    temps,
                    temp_bands,
                    f"{label} 溫度 temperature",
                    "°C",
                    period=(first, last),
                    width=w,
                    height=210,
                )
            )
            report.drawing(
                band_chart(
                    rhs,
                    rh_bands,
                    f"{label} 相對濕度 relative humidity",
                    "% RH",
                    period=(first, last),
                    width=w,
                    height=210,
                )
            )


def _day_stats(d: DayProfile, prefix: str) -> DayStats | None:
    """A day's temp or rh min/avg/max for a chart; None when one of them is missing."""
    lo, avg, hi = (getattr(d, f"{prefix}_{k}") for k in ("min", "avg", "max"))
    if lo is None or avg is None or hi is None:
        return None
    return DayStats(d.day, float(lo), float(avg), float(hi))


def summary_report(pack: _Pack, s: Summary) -> PdfReport:
    """summary.pdf: title page, board, environment, tests, incidents, audit, sign-off."""
    zh, en = chain_verdict(s.report)
    report = PdfReport(
        TITLE_ZH,
        TITLE_EN,
        site=f"{pack.site.site.name} ({pack.site.site.id})",
        period=pack.period,
        generated_at=pack.now,
        tz=pack.tz,
        details=[
            ("控制項 Control", CONTROL),
            ("製表人 Prepared by", pack.prepared_by),
            ("稽核鏈頭 Audit head", f"#{s.report.head_seq} {s.report.head_hash}"),
            ("稽核鏈驗證 Audit chain", f"{zh}\n{en}"),
        ],
    )

    report.heading("CC-16000 看板", "Board at the end of the period")
    report.paragraph(
        f"各項目於期間結束時之最新結果；期間內結果變更 {s.history} 筆（含期初狀態），詳見 board.xlsx。"
        f"The newest result of each item stored before the end of the period; {s.history} result "
        "changes in the period (with those in force at its start) are in board.xlsx."
    )
    board_rows: list[dict[str, object]] = []
    for line in s.board:
        j = line.to_json()
        r = line.result
        board_rows.append(
            {
                "code": j["code"],
                "title": f"{j['title_zh']}\n{j['title_en']}",
                "status": j["status"],
                "reason": f"{j['reason_zh']}\n{j['reason_en']}",
                "last_evidence_at": r.last_evidence_at if r else None,
                "next_due": r.next_due if r else None,
            }
        )
    board_cols = [  # widths as shares of the page: dates stay on one line or two
        Column("code", "條文", "Clause", width=13),
        Column("title", "項目", "Item", width=22),
        Column("status", "結果", "Status", width=11),
        Column("reason", "說明", "Reason", width=32),
        Column("last_evidence_at", "最近佐證", "Last evidence", width=11),
        Column("next_due", "下次到期", "Next due", width=11),
    ]
    report.table(Table("board", "CC-16000 看板", "CC-16000 board", board_cols, board_rows), caption=False)

    count_rows: list[dict[str, object]] = []
    for k, rows in s.kind_rows.items():
        model = KINDS[k]
        void = sum(1 for r in rows if r.voided_at is not None)
        count_rows.append({"kind": f"{model.ZH} {model.EN}", "count": len(rows) - void, "void": void})
    report.heading("期間紀錄", "Records of the period", level=2)
    report.table(
        Table(
            "record_counts",
            "各類紀錄筆數（明細見 records.xlsx）",
            "Records per kind (details in records.xlsx)",
            [Column("kind", "類別", "Kind"), Column("count", "有效", "Live"), Column("void", "作廢", "Void")],
            count_rows,
        )
    )

    report.page_break()
    _environment_section(report, pack, s.env)

    report.page_break()
    report.heading("測試及檢查", "Tests, inspections, drills")
    _timeline_charts(report, s.events, pack)
    report.table(
        Table(
            "timeline",
            "時間軸",
            "Timeline",
            [
                Column("at", "時間", "At"),
                Column("kind", "類別", "Kind"),
                Column("subject", "對象", "Subject"),
                Column("status", "判定", "Status"),
                Column("text", "說明", "Details"),
            ],
            [
                {
                    "at": e.at,
                    "kind": _KIND_SHORT.get(e.kind, e.kind),
                    "subject": e.subject,
                    "status": e.status,
                    "text": e.text,
                }
                for e in s.events
            ],
        )
    )
    details: list[tuple[type[RecordModel], Sequence[RecordModel]]] = [
        (GeneratorTest, s.generator_tests),
        (UpsTest, s.ups_tests),
        (Inspection, s.inspections),
        (Drill, s.drills),
    ]
    for model, items in details:
        report.table(_detail_table(model, items, _timeline_status(s.events, items)))

    report.heading("異常事件檢討", "Incident reviews (CC-20000 (五))")
    report.table(incidents_table(s.incidents, pack.now), caption=False)

    report.heading("稽核軌跡", "Audit log")
    seqs = f"（序號 {s.entries[0].seq}–{s.entries[-1].seq}）" if s.entries else ""
    report.paragraph(
        f"期間內稽核紀錄 {len(s.entries)} 筆{seqs}，全文見 audit.xlsx。"
        f"{len(s.entries)} audit entries in the period, in full in audit.xlsx."
    )
    report.paragraph(f"{zh}\n{en}")
    report.paragraph(f"鏈頭 head: #{s.report.head_seq} {s.report.head_hash}")
    if s.report.problems:
        report.table(
            Table(
                "audit_problems",
                "稽核鏈問題",
                "Audit chain problems",
                [
                    Column("seq", "序號", "Seq"),
                    Column("kind", "類型", "Kind"),
                    Column("message", "說明", "Message"),
                ],
                [
                    {
                        "seq": p.seq,
                        "kind": f"{p.kind} {_PROBLEM_ZH.get(p.kind, '')}".strip(),
                        "message": p.message,
                    }
                    for p in s.report.problems
                ],
            )
        )
    report.sign_off(prepared_by=pack.prepared_by)
    return report
