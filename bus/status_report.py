"""`roomguard status`: render the collector and ingest snapshots of a state directory (zh-TW + English).

Every time is shown in the site's zone with its UTC offset, and every state says how old it is: a
snapshot's age, how long the broker or the database has been in its state. A process that died without
a clean stop (SIGKILL, OOM, power) is shown as dead at once (bus/status_file.py `liveness`), not
as running until its snapshot goes stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

from bus.status_file import STALE_AFTER_S, age_s, liveness, read_snapshots

# Snapshot keys that are not counters worth a column.
_NOT_COUNTERS = {
    "process",
    "written",
    "running",
    "broker_connected",
    "db_state",
    "db_error",
    "pid",
    "pid_start",
    "host",
    "backlog",
}


ProcessState = Literal["running", "stopped", "dead", "stale", "unknown", "unreadable"]


def process_state(snap: dict[str, Any], now: datetime) -> ProcessState:
    """What a process snapshot says about its writer: running, stopped (cleanly), dead (killed or
    crashed, by its pid), stale (no snapshot for STALE_AFTER_S), unknown (no time) or unreadable."""
    if "error" in snap and "written" not in snap:
        return "unreadable"
    age = age_s(snap, now)
    if age is None:
        return "unknown"
    if not snap.get("running", True):
        return "stopped"
    if liveness(snap) == "dead":
        return "dead"
    if age > STALE_AFTER_S:
        return "stale"
    return "running"


def _state(snap: dict[str, Any], now: datetime) -> str:
    state = process_state(snap, now)
    age = age_s(snap, now) or 0.0
    if state == "unreadable":
        return f"unreadable 無法讀取: {snap['error']}"
    if state == "unknown":
        return "unknown 未知 (snapshot has no time)"
    if state == "stopped":
        return f"stopped 已停止 (cleanly, {age:.0f} s ago)"
    if state == "dead":
        return (
            f"DEAD 已終止 (pid {snap.get('pid')} no longer runs: killed or crashed; "
            f"last snapshot {age:.0f} s ago)"
        )
    if state == "stale":
        return f"not running 未執行 (last snapshot {age:.0f} s ago)"
    return f"running 執行中 (pid {snap.get('pid', '?')}, snapshot {age:.1f} s old)"


def _alive(snap: dict[str, Any], now: datetime) -> bool:
    """True if the process behind `snap` may still act (its connection states are current)."""
    return process_state(snap, now) == "running"


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    """One process of the state directory as `roomguard status` judges it, with the figures the web
    API and /metrics show (None: the snapshot does not carry it, or the process is not running)."""

    name: str  # collector, ingest, ingest-1, alerts, compliance, …
    state: ProcessState
    snapshot_age_s: float | None
    pid: int | None
    broker_connected: bool | None = None
    outbox_depth: int | None = None  # collector: messages held until ingest confirms them stored
    outbox_bytes: int | None = None
    # collector: age of the oldest message not yet confirmed stored, i.e. how far the database is behind
    outbox_oldest_age_s: float | None = None
    outbox_dropped: int | None = None
    backlog: int | None = None  # ingest: received, not yet written
    last_write_age_s: float | None = None  # ingest: seconds since its last database write
    db_state: str | None = None  # ingest: ok, or why not


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _age_of(ts: Any, now: datetime) -> float | None:
    try:
        return (now - datetime.fromisoformat(str(ts))).total_seconds() if ts else None
    except (ValueError, TypeError):
        return None


def process_figures(name: str, snap: dict[str, Any], now: datetime) -> ProcessFigures:
    """The state and figures of one snapshot (connection states only while the process runs)."""
    state = process_state(snap, now)
    running = state == "running"
    connected: bool | None = None
    if running and isinstance(snap.get("broker_connected"), bool):
        connected = snap["broker_connected"]
    elif (
        running and isinstance(snap.get("broker"), dict) and isinstance(snap["broker"].get("connected"), bool)
    ):
        connected = snap["broker"]["connected"]
    outbox = snap.get("outbox") if isinstance(snap.get("outbox"), dict) else {}
    assert isinstance(outbox, dict)
    is_ingest = name.startswith("ingest")
    return ProcessFigures(
        name=name,
        state=state,
        snapshot_age_s=age_s(snap, now),
        pid=_int(snap.get("pid")),
        broker_connected=connected,
        outbox_depth=_int(outbox.get("depth")),
        outbox_bytes=_int(outbox.get("bytes")),
        outbox_oldest_age_s=_num(outbox.get("oldest_age_s")),
        outbox_dropped=_int(outbox.get("dropped_total")),
        backlog=_int(snap.get("backlog")) if is_ingest else None,
        last_write_age_s=_age_of(snap.get("last_write_ts"), now) if is_ingest else None,
        db_state=str(snap["db_state"]) if is_ingest and running and "db_state" in snap else None,
    )


def state_dir_figures(state_dir: Path, now: datetime) -> list[ProcessFigures]:
    """Every process snapshot of `state_dir` (none if it does not exist), by name."""
    snaps = read_snapshots(state_dir) if state_dir.is_dir() else {}
    return [process_figures(name, snap, now) for name, snap in sorted(snaps.items())]


def _connected(section: Any) -> str:
    if not isinstance(section, dict) or "connected" not in section:
        return "unknown 未知"
    where = f" {section['host']}:{section['port']}" if "host" in section and "port" in section else ""
    return ("connected 已連線" if section["connected"] else "DISCONNECTED 未連線") + where


def _local(ts: Any, tz: tzinfo) -> str:
    """A stored UTC time (ISO text or epoch seconds) in the site's zone, with its UTC offset."""
    if ts is None or ts == "":
        return "-"
    try:
        when = (
            datetime.fromtimestamp(ts, UTC)
            if isinstance(ts, int | float)
            else datetime.fromisoformat(str(ts))
        )
        local = when.astimezone(tz)
    except (ValueError, OverflowError, OSError):
        return str(ts)
    offset = local.strftime("%z")  # +0800 → +08:00, or +08 when whole hours
    offset = offset[:3] if offset.endswith("00") else f"{offset[:3]}:{offset[3:]}"
    return local.strftime("%m-%d %H:%M:%S") + offset


def _since(ts: Any, now: datetime, tz: tzinfo) -> str:
    """` since 12-01 19:16:40+08 (12 s)` for a state that started at `ts`, or nothing."""
    if not ts:
        return ""
    try:
        age = (now - datetime.fromisoformat(str(ts))).total_seconds()
    except (ValueError, TypeError):
        return ""
    return f" since 自 {_local(ts, tz)} ({age:.0f} s)"


def format_collector(snap: dict[str, Any], now: datetime, tz: tzinfo = UTC) -> list[str]:
    """Lines about the collector: process state, broker, outbox (with drops), one line per device."""
    lines = [f"collector 收集器 {snap.get('collector_id', '')}: {_state(snap, now)}"]
    broker = snap.get("broker", {})
    link = _connected(broker) if _alive(snap, now) else "- (process not running 程序未執行)"
    lines.append(
        f"  broker MQTT 代理: {link}  published {broker.get('published', '-')}"
        f"  acked {broker.get('acked', '-')}  confirmed 已確認 {broker.get('confirmed', '-')}"
        f"  in flight {broker.get('inflight', '-')}"
        + (f"  republished 重送 {broker['republished']}" if broker.get("republished") else "")
        + (f"  refused 被拒 {broker['refused']} (kept, retried 保留重送)" if broker.get("refused") else "")
    )
    ob = snap.get("outbox", {})
    reasons = ob.get("dropped_by_reason", {})
    awaiting = ob.get("awaiting_confirmation")
    lines.append(
        f"  outbox 暫存佇列: {ob.get('depth', '-')} messages 筆, {ob.get('bytes', '-')} bytes"
        f" (max {ob.get('max_bytes', '-')}), oldest 最舊 {ob.get('oldest_age_s', 0):.1f} s"
        + (
            f", {awaiting} at the broker awaiting the database's confirmation 待資料庫確認"
            if awaiting
            else ""
        )
    )
    drop = ob.get("last_drop")
    dropped = ob.get("dropped_total", 0)
    line = (
        f"  dropped 已丟棄: {dropped} (bytes bound {reasons.get('bytes', 0)}, age bound "
        f"{reasons.get('age', 0)})"
    )
    if drop:
        line += f"; last 最近 {_local(drop.get('when'), tz)}: {drop.get('count')} by {drop.get('reason')}"
    if dropped:
        line += "  ⚠ DATA DROPPED 資料已遺失"
    lines.append(line)
    lines += _trap_lines(snap.get("traps"))
    devices = snap.get("devices", {})
    if devices:
        lines.append("  devices 設備:")
        lines.append(
            f"    {'device 設備':<18} {'room 機房':<10} {'last poll 最後輪詢':<20} "
            f"{'quality 品質':<13} {'fails':>5}  error 錯誤"
        )
        for dev, d in sorted(devices.items()):
            lines.append(
                f"    {dev:<18} {d.get('room') or '-':<10} {_local(d.get('last_poll'), tz):<20} "
                f"{d.get('quality') or '-':<13} {d.get('failures', 0):>5}  {d.get('error') or ''}".rstrip()
            )
    return lines


def _trap_lines(traps: Any) -> list[str]:
    """The trap listener's counts, and each refusing source with what to check on that card."""
    if not isinstance(traps, dict):
        return []
    lines = [
        f"  traps SNMP 陷阱: listening 監聽 {traps.get('listen', '-')}, received 已接收 "
        f"{traps.get('received', 0)}, refused 已拒絕 {traps.get('refused_total', 0)}"
        + (f", dropped (queue full) 已丟棄 {traps['dropped']}" if traps.get("dropped") else "")
    ]
    for r in traps.get("refused", []):
        if isinstance(r, dict):
            what = f"{r.get('count')} {r.get('kind')}"
            lines.append(f"    refused from 拒收來源 {r.get('source')}: {what} ({r.get('hint')})")
    return lines


def format_ingest(name: str, snap: dict[str, Any], now: datetime, tz: tzinfo = UTC) -> list[str]:
    """Lines about one ingest process: state, broker and database connection, its counters."""
    lines = [f"ingest 寫入程序 ({name}): {_state(snap, now)}"]
    alive = _alive(snap, now)
    if not alive:
        broker = db = "- (process not running 程序未執行)"
    else:
        if "broker_connected" in snap:
            broker = "connected 已連線" if snap["broker_connected"] else "DISCONNECTED 未連線"
            broker += _since(snap.get("broker_since"), now, tz)
        else:
            broker = _connected(snap.get("broker"))
        if "db_state" in snap:
            ok = snap["db_state"] == "ok"
            db = "connected 已連線" if ok else f"{str(snap['db_state']).upper()} 異常"
            db += _since(snap.get("db_state_since"), now, tz)
            if snap.get("db_error") and not ok:
                db += f": {snap['db_error']}"
        else:
            db = _connected(snap.get("database"))
    lines.append(f"  broker MQTT 代理: {broker}")
    lines.append(f"  database 資料庫: {db}  last write 最後寫入 {_local(snap.get('last_write_ts'), tz)}")
    counters = [
        f"{k} {v}"
        for k, v in snap.items()
        if k not in _NOT_COUNTERS and isinstance(v, int | float) and not isinstance(v, bool)
    ]
    if counters:
        lines.append("  " + "  ".join(counters))
    if snap.get("missing"):
        lines.append(
            f"  ⚠ {snap['missing']} reading(s) missing between collector and database 讀值缺漏 "
            "(the collector publishes them again once the broker is back)"
        )
    return lines


def format_alerts(snap: dict[str, Any], now: datetime, tz: tzinfo = UTC) -> list[str]:
    """Lines about the alerts process: open alerts (both languages) and the delivery outbox per channel."""
    state = _state(snap, now)
    opened = [a for a in snap.get("open", []) if isinstance(a, dict)]
    lines = [f"alerts 告警程序: {state}; open 進行中 {len(opened)}"]
    if snap.get("summarised"):
        lines[0] += f"; {snap['summarised']} folded into summaries by the rate limit 因頻率限制併入彙總"
    for a in opened[:20]:
        msg = a.get("message") or {}
        who = f", acked 已確認 by {a['acked_by']}" if a.get("acked_by") else ""
        quiet = f" [{a['suppressed']}]" if a.get("suppressed") else ""
        lines.append(
            f"  {str(a.get('severity', '')).upper():<8} {a.get('rule')} {a.get('device') or ''} "
            f"since 起 {_local(a.get('since'), tz)}{who}{quiet}"
        )
        for lang in ("zh_TW", "en"):
            if isinstance(msg, dict) and msg.get(lang):
                lines.append(f"           {msg[lang]}")
    for name, ch in sorted((snap.get("channels") or {}).items()):
        if not isinstance(ch, dict):
            continue
        line = (
            f"  channel 通知管道 {name}: sent 已送 {ch.get('sent', 0)}, pending 待送 {ch.get('pending', 0)}, "
            f"failed 失敗 {ch.get('failed', 0)}"
        )
        if ch.get("failed"):
            line += "  ⚠ NOT DELIVERED 未送達"
        if ch.get("last_error"):
            line += f"; last error 最近錯誤: {ch['last_error']}"
        lines.append(line)
    return lines


def format_compliance(snap: dict[str, Any], now: datetime, tz: tzinfo = UTC) -> list[str]:
    """Lines about the compliance process: the CC-16000 board's count per status and what is not pass."""
    state = _state(snap, now)
    board = [b for b in snap.get("board", []) if isinstance(b, dict)]
    counts = {s: sum(b.get("status") == s for b in board) for s in ("pass", "warn", "fail", "unknown")}
    lines = [
        f"compliance 查核程序: {state}; evaluated 評估於 {_local(snap.get('evaluated_at'), tz)}; "
        f"pass 通過 {counts['pass']}, warn 注意 {counts['warn']}, fail 未通過 {counts['fail']}, "
        f"unknown 未知 {counts['unknown']}"
    ]
    for b in board:
        if b.get("status") != "pass":
            lines.append(f"  {str(b.get('status')).upper():<8} {b.get('code', '')} {b.get('reason_zh', '')}")
            lines.append(f"           {b.get('reason_en', '')}")
    return lines


def format_api(snap: dict[str, Any], now: datetime) -> list[str]:
    """Lines about the web API process: state and where it listens."""
    lines = [f"api 網頁與 API: {_state(snap, now)}"]
    if snap.get("listen"):
        lines.append(f"  listening 監聽 {snap['listen']}  (GET /healthz; docs /api/v1/docs)")
    return lines


def format_status(state_dir: Path, site_id: str, now: datetime | None = None, tz: tzinfo = UTC) -> str:
    """The whole `roomguard status` text for a state directory."""
    now = now or datetime.now(UTC)
    snaps = read_snapshots(state_dir) if state_dir.is_dir() else {}
    zone = getattr(tz, "key", None) or str(tz)
    lines = [f"roomguard status 狀態 — site 站點 {site_id} (state {state_dir}; times 時間 {zone})"]
    collector = snaps.get("collector")
    if collector is None:
        lines.append("collector 收集器: not running 未執行 (no snapshot)")
    else:
        lines += format_collector(collector, now, tz)
    ingests = {k: v for k, v in snaps.items() if k.startswith("ingest")}
    if not ingests:
        lines.append("ingest 寫入程序: not running 未執行 (no snapshot)")
    for name, snap in sorted(ingests.items()):
        lines += format_ingest(name, snap, now, tz)
    if "alerts" in snaps:
        lines += format_alerts(snaps["alerts"], now, tz)
    if "compliance" in snaps:
        lines += format_compliance(snaps["compliance"], now, tz)
    if "api" in snaps:
        lines += format_api(snaps["api"], now)
    return "\n".join(lines)
