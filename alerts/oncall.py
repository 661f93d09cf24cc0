"""Who is on call now: the site file's `alerts.on_call` shifts at an instant (pure; the clock is an argument).

A shift names the weekdays it *starts* on, a start and an end time of day in the site's time zone, and
the channels that reach that person. It is an interval of real time:

* it starts when the site's wall clock first shows `start` on one of `days`, and ends when the wall
  clock next shows `end`: on the same day when `end` is later than `start`, on the next day when it is
  earlier (22:00 to 06:00 started on Friday covers Saturday until 06:00), 24 hours later when they are
  equal;
* across a daylight-saving change the wall clock rules: a night shift 22:00 to 06:00 lasts 7 hours when
  the clocks go forward and 9 when they go back. A time the clock skips (02:30 in Europe/Berlin on the
  last Sunday of March) is reached at the jump itself (03:00 summer time); a time it shows twice (02:30
  on the last Sunday of October) is its first showing, so a shift never restarts within the repeated
  hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SITE_TZ = ZoneInfo("Asia/Taipei")  # the site file's default time zone (siteconfig.config)


class ShiftLike(Protocol):
    """What `on_call_channels` reads of a shift (siteconfig.alerts_config.OnCallShift is one)."""

    @property
    def days(self) -> Iterable[str]: ...
    @property
    def start(self) -> time: ...
    @property
    def end(self) -> time: ...
    @property
    def channels(self) -> Iterable[str]: ...


@dataclass(frozen=True, slots=True)
class Shift:
    """One on-call shift (immutable and comparable, for lifecycle.Policy)."""

    name: str
    days: tuple[str, ...]  # weekdays it starts on: mon … sun
    start: time
    end: time
    channels: tuple[str, ...]

    @classmethod
    def of(cls, shift: ShiftLike, name: str = "") -> Shift:
        """From any shift-like object (the site file's OnCallShift)."""
        return cls(
            str(getattr(shift, "name", name)),
            tuple(shift.days),
            shift.start,
            shift.end,
            tuple(shift.channels),
        )


def wall_instant(day: date, at: time, tz: tzinfo) -> datetime:
    """The UTC instant the wall clock of `tz` first shows `at` on `day`; for a time the clock skips, the
    instant it jumps over it."""
    naive = datetime.combine(day, at.replace(tzinfo=None))
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first  # exists (when shown twice: fold 0 is the first showing)
    # A gap: fold=1 reads `at` with the offset after the jump, an instant before it; fold=0 with the
    # offset before, an instant after it. The jump is the first instant whose wall time is past `at`.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    lo, hi = min(lo, hi), max(lo, hi)
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def shift_interval(shift: ShiftLike, day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the shift started on `day` (whatever its weekday)."""
    begin = wall_instant(day, shift.start, tz)
    end_day = day if shift.end > shift.start else day + timedelta(days=1)
    return begin, wall_instant(end_day, shift.end, tz)


def active(shift: ShiftLike, now_utc: datetime, tz: tzinfo) -> bool:
    """Is `shift` on duty at `now_utc` (an aware datetime)?"""
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware")
    days = set(shift.days)
    today = now_utc.astimezone(tz).date()
    for day in (today - timedelta(days=2), today - timedelta(days=1), today):
        if WEEKDAYS[day.weekday()] not in days:
            continue
        begin, end = shift_interval(shift, day, tz)
        if begin <= now_utc < end:
            return True
    return False


def on_call_channels(shifts: Sequence[ShiftLike], now_utc: datetime, tz: tzinfo) -> tuple[str, ...]:
    """The channels of every shift on duty at `now_utc` in the site's time zone `tz`, in shift order,
    each once."""
    out: list[str] = []
    for shift in shifts:
        if active(shift, now_utc, tz):
            out += [c for c in shift.channels if c not in out]
    return tuple(out)


__all__ = ["SITE_TZ", "WEEKDAYS", "Shift", "ShiftLike", "active", "on_call_channels", "wall_instant"]
