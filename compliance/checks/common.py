# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""What every check shares: findings (one per device or record) folded into one board line, the period,
device telemetry, and how times, spans and numbers read in both languages."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from compliance.facts import DeviceInfo, DeviceState, Facts, Value
from compliance.items import Item
from compliance.kinds import RecordModel
from compliance.result import SEVERITY_ORDER, CheckResult, Evidence, Status, worst

Check = Callable[[Facts], CheckResult]
R = TypeVar("R", bound=RecordModel)

# Values of an alarm_* metric that mean "no alarm": the DSE/SmartGen enum's idle states (catalog.yaml,
# genset alarm_<name>) and a boolean alarm that is clear.
INACTIVE_ALARM: frozenset[str] = frozenset({"not_active", "inactive_indication", "disabled", "unimplemented"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One device's or record's part of a board line."""

    status: Status
    zh: str
    en: str
    evidence: tuple[Evidence, ...] = ()
    last_at: datetime | None = None
    next_due: datetime | None = None


def board_line(item: Item, findings: Sequence[Finding]) -> CheckResult:
    """One board line: the worst status, reasons worst first, the earliest due date and its evidence date.

    With a due date the line dates its evidence from the finding that is due first (the one that drives
    the date); without one, from the newest evidence of any finding.
    """
    if not findings:
        raise ValueError(f"{item.key}: a board line needs at least one finding")
    ordered = sorted(findings, key=lambda f: SEVERITY_ORDER[f.status])  # stable: device order kept
    due = [f for f in findings if f.next_due is not None]
    if due:
        first = min(due, key=lambda f: f.next_due or f.last_at or datetime.max)
        next_due, last_at = first.next_due, first.last_at
    else:
        dated = [f.last_at for f in findings if f.last_at is not None]
        next_due, last_at = None, max(dated) if dated else None
    evidence: list[Evidence] = []
    for f in ordered:
        evidence.extend(e for e in f.evidence if e not in evidence)
    return CheckResult(
        item=item.key,
        status=worst([f.status for f in findings]),
        reason_zh="；".join(f.zh for f in ordered),
        reason_en="; ".join(f.en for f in ordered),
        evidence=tuple(evidence),
        last_evidence_at=last_at,
        next_due=next_due,
    )


def period_start(facts: Facts) -> datetime:
    """Start of the period the record checks look at (config.lookback_days before now)."""
    return facts.now - timedelta(days=facts.config.lookback_days)


def in_period(facts: Facts, at: datetime) -> bool:
    """Whether a record's time lies in the period: after its start and not in the future."""
    return period_start(facts) <= at <= facts.now


def happened(facts: Facts, records: Iterable[R]) -> list[R]:
    """Records whose main time is not in the future, oldest first (a planned entry proves nothing yet)."""
    return sorted((r for r in records if r.record_at() <= facts.now), key=lambda r: r.record_at())


def record_evidence(record: RecordModel, note: str | None = None) -> Evidence:
    """Evidence pointing at a record by kind and natural key."""
    return Evidence(record.KIND, record.ref(), record.record_at(), note)


Telemetry = Literal["missing", "offline", "ok"]


def telemetry(facts: Facts, device: DeviceInfo) -> tuple[Telemetry, DeviceState | None]:
    """Whether a device reports: missing (never heard from), offline (stopped answering) or ok."""
    state = facts.telemetry.get(device.id)
    if state is None or (state.last_seen is None and not state.metrics):
        return "missing", state
    if state.online is False:
        return "offline", state
    if state.online is None and not state.metrics:
        return "missing", state
    return "ok", state


def last_seen(facts: Facts, device_id: str) -> datetime | None:
    """When the bus last heard from a device (None: never)."""
    state = facts.telemetry.get(device_id)
    return state.last_seen if state is not None else None


def silent_finding(facts: Facts, device: DeviceInfo, how: Telemetry, state: DeviceState | None) -> Finding:
    """The unknown finding of a device that does not report (never heard from, or stopped answering)."""
    if how == "offline" and state is not None and state.last_seen is not None:
        seen = when(state.last_seen, facts.tz)
        return Finding(
            "unknown",
            f"{device.id}（{device.room}）未回應，最後回報於 {seen}",
            f"{device.id} ({device.room}) is not answering; last heard from {seen}",
            (Evidence("reading", f"{device.id}/online", state.last_seen, "offline"),),
            state.last_seen,
        )
    return Finding(
        "unknown",
        f"{device.id}（{device.room}）尚無遙測資料",
        f"{device.id} ({device.room}) has no telemetry yet",
        (Evidence("config", f"device/{device.id}"),),
    )


def active_alarms(metrics: dict[str, Value]) -> list[tuple[str, Value]]:
    """The alarm_* metrics whose value is an alarm (alarm_count is a field count, not an alarm)."""
    return [
        (name, value)
        for name, value in sorted(metrics.items())
        if name.startswith("alarm_")
        and name != "alarm_count"
        and value not in (False, None)
        and not (isinstance(value, str) and value in INACTIVE_ALARM)
    ]


def when(at: datetime, tz: ZoneInfo) -> str:
    """A time as the site reads it: local date and minute."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def interval(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """A local interval, the end's date left out when it is the start's (… 08:00 to 09:01)."""
    a, b = when(start, tz), when(end, tz)
    return f"{a}–{b[11:] if b[:10] == a[:10] else b}"


def day(at: datetime, tz: ZoneInfo) -> str:
    """A local date."""
    return at.astimezone(tz).strftime("%Y-%m-%d")


def num(value: float) -> str:
    """A number with at most one decimal and no trailing zero (82.5, 13.1, 12)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def span(delta: timedelta) -> tuple[str, str]:
    """A duration as (zh, en): days from one day on, hours from one hour on, else minutes."""
    seconds = abs(delta.total_seconds())
    if seconds >= 86_400:
        n = num(seconds / 86_400)
        return f"{n} 天", f"{n} day" if n == "1" else f"{n} days"
    if seconds >= 3_600:
        n = num(seconds / 3_600)
        return f"{n} 小時", f"{n} h"
    n = num(seconds / 60)
    return f"{n} 分鐘", f"{n} min"


def listing(parts: Sequence[str], *, zh: bool) -> str:
    """Several names in one phrase (、 in Chinese, commas in English)."""
    return ("、" if zh else ", ").join(parts)
