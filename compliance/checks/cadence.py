# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Cadences: when something that must recur is next due, and whether it is overdue or due soon.

Due at `last + every_days`. Overdue only after that instant (a test due exactly now is due, not late: the
board warns); `warn_days` before it, inclusive, the board warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from compliance.checks.common import span, when
from compliance.result import Status
from siteconfig.compliance_config import Cadence


@dataclass(frozen=True, slots=True)
class Due:
    """Where a cadence stands: status, next due date and the phrase saying so in both languages."""

    status: Status
    next_due: datetime
    zh: str
    en: str


def due_after(last_at: datetime, cadence: Cadence, now: datetime, tz: ZoneInfo) -> Due:
    """The cadence's state after an occurrence at `last_at`."""
    return due_at(last_at + timedelta(days=cadence.every_days), cadence, now, tz)


def due_at(next_due: datetime, cadence: Cadence, now: datetime, tz: ZoneInfo) -> Due:
    """The cadence's state with the next occurrence due at `next_due`."""
    date = when(next_due, tz)
    left = next_due - now
    zh_left, en_left = span(left)
    if left < timedelta(0):
        return Due(
            "fail", next_due, f"已逾期 {zh_left}（應於 {date} 前完成）", f"overdue by {en_left} (due {date})"
        )
    if left == timedelta(0):
        return Due("warn", next_due, f"現在到期（{date}）", f"due now ({date})")
    if left <= timedelta(days=cadence.warn_days):
        return Due("warn", next_due, f"將於 {date} 到期（剩 {zh_left}）", f"due {date} (in {en_left})")
    return Due("pass", next_due, f"下次應於 {date} 前完成（剩 {zh_left}）", f"next due {date} (in {en_left})")


def every(cadence: Cadence) -> tuple[str, str]:
    """The cadence as a phrase: (zh, en)."""
    return f"每 {cadence.every_days} 天", f"every {cadence.every_days} days"
