# ruff: noqa: RUF001, RUF002 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""People at work in the room: vendor visits escorted and recorded (八)–(十), maintenance outside the
trading session (十一).

Both are absence-is-pass items: no vendor visit or no service-stopping maintenance in the period is a
legitimate pass (said so in the reason), because there is nothing the control requires to exist. The door
alarms of item (一) are what would show an unrecorded visit.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from compliance.checks.common import (
    Finding,
    board_line,
    in_period,
    interval,
    listing,
    period_start,
    record_evidence,
    when,
)
from compliance.facts import Facts
from compliance.items import MAINTENANCE_HOURS, VENDOR_ESCORT
from compliance.kinds import Maintenance, VendorVisit, labels
from compliance.result import CheckResult
from siteconfig.alerts_config import WEEKDAYS
from siteconfig.compliance_config import TradingSession

# A visit still without an exit time after a day was not signed out (a maintenance visit is hours long).
SIGN_OUT_WITHIN = timedelta(hours=24)
VISIT_ZH = {name: zh for name, zh, _ in labels(VendorVisit)}


def check_vendor_escort(facts: Facts) -> CheckResult:
    """(八)–(十) every vendor visit of the period escorted by someone else, with work order, approver, ID
    check, and an exit time once a day old; none in the period → pass."""
    days = facts.config.lookback_days
    visits = sorted(
        (v for v in facts.of(VendorVisit) if in_period(facts, v.in_at)),
        key=lambda v: v.in_at,
    )
    if not visits:
        return board_line(
            VENDOR_ESCORT,
            [
                Finding(
                    "pass",
                    f"近 {days} 天無廠商進出紀錄",
                    f"no vendor visits in the period (last {days} days)",
                )
            ],
        )
    findings = []
    complete = []
    inside = []
    for v in visits:
        missing = _missing(v, facts.now)
        name_zh = f"{v.visit_id}（{v.company}，{v.person}，{when(v.in_at, facts.tz)}）"
        name_en = f"{v.visit_id} ({v.company}, {v.person}, {when(v.in_at, facts.tz)})"
        if missing:
            fields_zh = listing(
                [VISIT_ZH[m] if m != "escort=person" else "陪同人員（不得為訪客本人）" for m in missing],
                zh=True,
            )
            fields_en = listing(
                [m if m != "escort=person" else "escort (must not be the visitor)" for m in missing], zh=False
            )
            findings.append(
                Finding(
                    "fail",
                    f"廠商進出 {name_zh}缺：{fields_zh}",
                    f"vendor visit {name_en} lacks {fields_en}",
                    (record_evidence(v, "incomplete"),),
                    v.in_at,
                )
            )
        else:
            complete.append(v)
            if v.out_at is None:
                inside.append(v.visit_id)
    if complete:
        still_zh = f"（{listing(inside, zh=True)} 尚在機房內）" if inside else ""
        still_en = f" ({listing(inside, zh=False)} still in the room)" if inside else ""
        findings.append(
            Finding(
                "pass",
                f"近 {days} 天 {len(complete)} 筆廠商進出"
                f"皆有陪同、維護申請單、核准、證件查驗及離開時間{still_zh}",
                f"{len(complete)} vendor visit(s) in the last {days} days, each escorted, with work order, "
                f"approval, ID check and exit time{still_en}",
                tuple(record_evidence(v) for v in complete),
                complete[-1].in_at,
            )
        )
    return board_line(VENDOR_ESCORT, findings)


def _missing(v: VendorVisit, now: datetime) -> list[str]:
    out = []
    if not v.escort:
        out.append("escort")
    elif v.escort.casefold() == v.person.casefold():
        out.append("escort=person")
    for name in ("work_order", "approved_by"):
        if not getattr(v, name):
            out.append(name)
    if not v.id_checked:
        out.append("id_checked")
    if v.out_at is None and now - v.in_at > SIGN_OUT_WITHIN:
        out.append("out_at")
    return out


def check_maintenance_hours(facts: Facts) -> CheckResult:
    """(十一) no service-stopping window overlaps the trading session: with a justification → warn, without
    → fail; planned windows count too; none in the period → pass."""
    session = facts.config.trading_session
    hours = f"{_days(session)} {session.start:%H:%M}–{session.end:%H:%M}"
    windows = sorted(
        (
            w
            for w in facts.of(Maintenance)
            if w.stops_service
            and w.ends_at >= period_start(facts)  # planned ones too: fail before, not after
        ),
        key=lambda w: w.starts_at,
    )
    days = facts.config.lookback_days
    if not windows:
        return board_line(
            MAINTENANCE_HOURS,
            [
                Finding(
                    "pass",
                    f"近 {days} 天無需停機之維護作業",
                    f"no maintenance windows that stop service in the period (last {days} days)",
                )
            ],
        )
    findings = []
    outside = []
    for w in windows:
        hit = _overlap(w, session, facts.tz)
        if hit is None:
            outside.append(w)
            continue
        a, b = hit
        span_ = interval(w.starts_at, w.ends_at, facts.tz)
        name_zh = f"維護作業 {w.window_id}（{w.system}，{span_}）"
        name_en = f"maintenance {w.window_id} ({w.system}, {span_})"
        clash_zh = f"於交易時段（{hours}）{interval(a, b, facts.tz)} 停機"
        clash_en = f"stops service in the trading session ({hours}) {interval(a, b, facts.tz)}"
        if w.justification:
            findings.append(
                Finding(
                    "warn",
                    f"{name_zh}{clash_zh}，理由：{w.justification}",
                    f"{name_en} {clash_en}, justified: {w.justification}",
                    (record_evidence(w, "justified"),),
                    w.starts_at,
                )
            )
        else:
            findings.append(
                Finding(
                    "fail",
                    f"{name_zh}{clash_zh}，且未記錄理由",
                    f"{name_en} {clash_en} with no justification",
                    (record_evidence(w, "in trading hours"),),
                    w.starts_at,
                )
            )
    if outside:
        findings.append(
            Finding(
                "pass",
                f"{len(outside)} 筆需停機之維護作業皆在交易時段（{hours}）以外",
                f"{len(outside)} maintenance window(s) that stop service, all outside the trading session "
                f"({hours})",
                tuple(record_evidence(w) for w in outside),
                max(w.starts_at for w in outside),
            )
        )
    return board_line(MAINTENANCE_HOURS, findings)


def _days(session: TradingSession) -> str:
    return ",".join(session.days)


def _overlap(w: Maintenance, session: TradingSession, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The first part of the window inside a trading session (half-open: ending at 09:00 or starting at
    13:30 touches the session without overlapping it), on the site's local trading days."""
    day: date = w.starts_at.astimezone(tz).date()
    last = w.ends_at.astimezone(tz).date()
    while day <= last:
        if WEEKDAYS[day.weekday()] in session.days:
            opens = datetime.combine(day, session.start, tzinfo=tz)
            closes = datetime.combine(day, session.end, tzinfo=tz)
            if w.starts_at < closes and w.ends_at > opens:
                return max(w.starts_at, opens), min(w.ends_at, closes)
        day += timedelta(days=1)
    return None
