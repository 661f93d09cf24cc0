# ruff: noqa: RUF001, RUF002 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The duty roster (七)1: a named duty operator for every room at every moment of the past day and ahead.

The window is [now − 24 h, now + duty_lookahead_h); shifts are half-open, so a shift ending at 08:00 and
the next starting at 08:00 leave no gap. A shift without a room covers every room. A gap in the coming 24 h
or in the past 24 h fails (the door showed no one, or will); a gap further ahead than 24 h (a look-ahead
longer than a day) warns. No duty record at all is unknown, not fail: the missing-input rule of the board
(a roster kept on paper and not yet imported is no evidence either way, and unknown is never a pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from compliance.checks.common import Finding, board_line, interval, listing, record_evidence, when
from compliance.facts import Facts
from compliance.items import DUTY_ROSTER
from compliance.kinds import DutyShift
from compliance.result import CheckResult, Status

PAST = timedelta(hours=24)  # (七)1: the posting must have been there; a day back shows it was
SOON = timedelta(hours=24)  # a gap within a day is as bad as one now: there is no time to fix the roster

Interval = tuple[datetime, datetime]


def check_duty_roster(facts: Facts) -> CheckResult:
    """(七)1 every room has a duty operator over the past 24 h and the look-ahead; names who is on now."""
    shifts = facts.of(DutyShift)
    if not shifts:
        return board_line(
            DUTY_ROSTER,
            [
                Finding(
                    "unknown",
                    "尚無值班表紀錄，無法確認機房門口揭示之值班人員",
                    "no duty roster recorded: no evidence of a posted duty operator",
                )
            ],
        )
    # Rooms that the same shifts cover are evaluated once (the usual roster has no room: all rooms).
    groups: dict[tuple[str, ...], list[str]] = {}
    rooms = facts.rooms or ("*",)
    for room in rooms:
        refs = tuple(s.ref() for s in shifts if s.room is None or s.room == room or room == "*")
        groups.setdefault(refs, []).append(room)
    findings = []
    for refs, members in groups.items():
        mine = [s for s in shifts if s.ref() in refs]
        label_zh = "全部機房" if len(groups) == 1 and len(rooms) > 1 else f"機房 {listing(members, zh=True)}"
        label_en = (
            "all rooms" if len(groups) == 1 and len(rooms) > 1 else f"room {listing(members, zh=False)}"
        )
        if members == ["*"]:
            label_zh, label_en = "機房", "the room"
        findings.append(_group(facts, mine, label_zh, label_en))
    return board_line(DUTY_ROSTER, findings)


def _group(facts: Facts, shifts: Sequence[DutyShift], label_zh: str, label_en: str) -> Finding:
    now, tz = facts.now, facts.tz
    ahead = timedelta(hours=facts.config.duty_lookahead_h)
    covered = _merge([(s.starts_at, s.ends_at) for s in shifts])
    gaps = _gaps(covered, now - PAST, now + ahead)
    past = [(a, min(b, now)) for a, b in gaps if a < now]
    future = [(max(a, now), b) for a, b in gaps if b > now]
    end = _covered_until(covered, now)
    next_due = end - ahead  # when the roster must have been extended to keep the look-ahead covered
    on_now = [s for s in shifts if s.starts_at <= now < s.ends_at]
    evidence = tuple(record_evidence(s, "on duty now") for s in on_now)
    parts: list[tuple[Status, str, str]] = []
    if future:
        a, b = future[0]
        more_zh = f"（另有 {len(future) - 1} 段空缺）" if len(future) > 1 else ""
        more_en = f" (and {len(future) - 1} more gap(s))" if len(future) > 1 else ""
        status: Status = "fail" if a < now + SOON else "warn"
        parts.append(
            (
                status,
                f"{label_zh} {interval(a, b, tz)} 無值班人員{more_zh}",
                f"{label_en}: no duty operator {interval(a, b, tz)}{more_en}",
            )
        )
    if past:
        a, b = past[0]
        more_zh = f"（另有 {len(past) - 1} 段空缺）" if len(past) > 1 else ""
        more_en = f" (and {len(past) - 1} more gap(s))" if len(past) > 1 else ""
        parts.append(
            (
                "fail",
                f"{label_zh}{_gap(label_zh)}過去 24 小時內 {interval(a, b, tz)} 無值班人員{more_zh}",
                f"{label_en}: no duty operator was on the roster {interval(a, b, tz)} in the past 24 h"
                f"{more_en}",
            )
        )
    if not parts:
        names_zh = listing([f"{s.operator}（至 {when(s.ends_at, tz)}）" for s in on_now], zh=True)
        names_en = listing([f"{s.operator} (until {when(s.ends_at, tz)})" for s in on_now], zh=False)
        return Finding(
            "pass",
            f"{label_zh}{_gap(label_zh)}目前值班：{names_zh}；值班表排至 {when(end, tz)}",
            f"{label_en}: on duty now {names_en}; the roster runs until {when(end, tz)}",
            evidence,
            max(s.starts_at for s in on_now),
            next_due,
        )
    order = {"fail": 0, "warn": 1}
    parts.sort(key=lambda p: order.get(p[0], 2))
    return Finding(
        parts[0][0],
        "；".join(p[1] for p in parts),
        "; ".join(p[2] for p in parts),
        evidence,
        max((s.starts_at for s in on_now), default=None),
        next_due,
    )


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Intervals sorted and joined where they touch or overlap."""
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _gaps(covered: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The parts of [start, end) no interval covers."""
    out: list[Interval] = []
    at = start
    for a, b in covered:
        if b <= at:
            continue
        if a >= end:
            break
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < end:
        out.append((at, end))
    return out


def _covered_until(covered: list[Interval], now: datetime) -> datetime:
    """The end of the coverage that contains now (now itself when now is not covered)."""
    for a, b in covered:
        if a <= now < b:
            return b
    return now


def _gap(label: str) -> str:
    """A space between a label that ends in a room id and the Chinese that follows; none after Chinese."""
    return " " if label[-1:].isascii() else ""
