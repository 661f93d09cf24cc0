"""`roomguard status`: render the collector and ingest snapshots of a state directory (zh-TW + English)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.status_file import STALE_AFTER_S, age_s, read_snapshots


def _state(snap: dict[str, Any], now: datetime) -> str:
    age = age_s(snap, now)
    if "error" in snap and "written" not in snap:
        return f"unreadable 無法讀取: {snap['error']}"
    if age is None:
        return "unknown 未知 (snapshot has no time)"
    if not snap.get("running", True):
        return f"stopped 已停止 (cleanly, {age:.0f} s ago)"
    if age > STALE_AFTER_S:
        return f"not running 未執行 (last snapshot {age:.0f} s ago)"
    return f"running 執行中 (snapshot {age:.1f} s old)"


def _connected(section: Any) -> str:
    if not isinstance(section, dict) or "connected" not in section:
        return "unknown 未知"
    where = f" {section['host']}:{section['port']}" if "host" in section and "port" in section else ""
    return ("connected 已連線" if section["connected"] else "DISCONNECTED 未連線") + where


def _local(ts: str | None, tz: Any) -> str:
    if not ts:
        return "-"
    try:
        return datetime.fromisoformat(ts).astimezone(tz).strftime("%m-%d %H:%M:%S")
    except ValueError:
        return ts


def format_collector(snap: dict[str, Any], now: datetime, tz: Any = UTC) -> list[str]:
    """Lines about the collector: process state, broker, outbox (with drops), one line per device."""
    lines = [f"collector 收集器 {snap.get('collector_id', '')}: {_state(snap, now)}"]
    broker = snap.get("broker", {})
    lines.append(
        f"  broker MQTT 代理: {_connected(broker)}  published {broker.get('published', '-')}"
        f"  acked {broker.get('acked', '-')}  in flight {broker.get('inflight', '-')}"
        + (f"  refused 被拒 {broker['refused']} (kept, retried 保留重送)" if broker.get("refused") else "")
    )
    ob = snap.get("outbox", {})
    reasons = ob.get("dropped_by_reason", {})
    lines.append(
        f"  outbox 暫存佇列: {ob.get('depth', '-')} messages 筆, {ob.get('bytes', '-')} bytes"
        f" (max {ob.get('max_bytes', '-')}), oldest 最舊 {ob.get('oldest_age_s', 0):.1f} s"
    )
    drop = ob.get("last_drop")
    dropped = ob.get("dropped_total", 0)
    line = (f"  dropped 已丟棄: {dropped} (bytes bound {reasons.get('bytes', 0)}, age bound "
            f"{reasons.get('age', 0)})")
    if drop:
        line += f"; last 最近 {_local(drop.get('when'), tz)}: {drop.get('count')} by {drop.get('reason')}"
    if dropped:
        line += "  ⚠ DATA DROPPED 資料已遺失"
    lines.append(line)
    devices = snap.get("devices", {})
    if devices:
        lines.append("  devices 設備:")
        lines.append(f"    {'device 設備':<18} {'room 機房':<10} {'last poll 最後輪詢':<20} "
                     f"{'quality 品質':<13} {'fails':>5}  error 錯誤")
        for dev, d in sorted(devices.items()):
            lines.append(
                f"    {dev:<18} {d.get('room') or '-':<10} {_local(d.get('last_poll'), tz):<20} "
                f"{d.get('quality') or '-':<13} {d.get('failures', 0):>5}  {d.get('error') or ''}".rstrip()
            )
    return lines


def format_ingest(name: str, snap: dict[str, Any], now: datetime) -> list[str]:
    """Lines about one ingest process: state, broker and database connection, its counters."""
    lines = [f"ingest 寫入程序 ({name}): {_state(snap, now)}"]
    if "broker_connected" in snap:
        broker = "connected 已連線" if snap["broker_connected"] else "DISCONNECTED 未連線"
    else:
        broker = _connected(snap.get("broker"))
    lines.append(f"  broker MQTT 代理: {broker}")
    if "db_state" in snap:
        ok = snap["db_state"] == "ok"
        db = "connected 已連線" if ok else f"{str(snap['db_state']).upper()} 異常"
        if snap.get("db_error"):
            db += f": {snap['db_error']}"
    else:
        db = _connected(snap.get("database"))
    lines.append(f"  database 資料庫: {db}")
    skip = {"process", "written", "running", "broker_connected", "db_state", "db_error"}
    counters = [f"{k} {v}" for k, v in snap.items()
                if k not in skip and isinstance(v, int | float) and not isinstance(v, bool)]
    if counters:
        lines.append("  " + "  ".join(counters))
    return lines


def format_status(state_dir: Path, site_id: str, now: datetime | None = None, tz: Any = UTC) -> str:
    """The whole `roomguard status` text for a state directory."""
    now = now or datetime.now(UTC)
    snaps = read_snapshots(state_dir) if state_dir.is_dir() else {}
    lines = [f"roomguard status 狀態 — site 站點 {site_id} (state {state_dir})"]
    collector = snaps.get("collector")
    if collector is None:
        lines.append("collector 收集器: not running 未執行 (no snapshot)")
    else:
        lines += format_collector(collector, now, tz)
    ingests = {k: v for k, v in snaps.items() if k.startswith("ingest")}
    if not ingests:
        lines.append("ingest 寫入程序: not running 未執行 (no snapshot)")
    for name, snap in sorted(ingests.items()):
        lines += format_ingest(name, snap, now)
    return "\n".join(lines)
