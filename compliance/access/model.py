"""What the access-rights flags read: holders, credentials, grants with schedules, badge events.

Plain frozen values, so the flags stay pure and a quarter of badge events (a million of them) costs
little memory. Times are aware datetimes; a schedule is read in the site's time zone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Literal

HolderType = Literal["employee", "contractor", "vendor", "futures_affiliate", "other"]
HOLDER_TYPES: tuple[HolderType, ...] = ("employee", "contractor", "vendor", "futures_affiliate", "other")
Direction = Literal["in", "out", "unknown"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Every zone of the site: a grant for "*" covers every door.
ALL_ZONES = "*"


class ScheduleError(ValueError):
    """A schedule text that does not parse; the message gives the valid forms."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a grant lets its holder in: weekdays (0 = Monday) and a local time window [start, end).

    An end before the start runs past midnight (22:00-06:00: the night belongs to the weekday it starts
    on); an end equal to the start is the whole day. `ALWAYS` is 24x7.
    """

    days: frozenset[int]
    start: time
    end: time
    text: str

    def allows(self, at: datetime, tz: tzinfo) -> bool:
        """Whether a badge at `at` falls inside the schedule (in the site's zone)."""
        local = at.astimezone(tz)
        clock, day = local.time().replace(tzinfo=None), local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= clock < self.end
        if self.start == self.end:  # a whole day
            return day in self.days
        # Past midnight: the evening part on a listed day, the morning part on the day after one.
        return (day in self.days and clock >= self.start) or ((day - 1) % 7 in self.days and clock < self.end)

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """'24x7', 'mon-fri 08:00-18:00', 'mon,wed,fri 09:00-17:30' or 'sat-sun 22:00-06:00'."""
        return _parse_schedule(text)


# A site has a handful of schedule texts and a quarter's review reads 20,000 grants: parse each once.
@functools.lru_cache(maxsize=1024)
def _parse_schedule(text: str) -> Schedule:
    raw = " ".join(text.strip().lower().split())
    if raw in ("24x7", "24*7", "24\u00d77", "always", "全天"):  # \u00d7: the multiplication sign
        return ALWAYS
    m = re.fullmatch(r"([a-z,\-]+) (\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", raw)
    if m is None:
        raise ScheduleError(
            f"schedule {text!r}: expected '24x7' or 'DAYS HH:MM-HH:MM' such as 'mon-fri 08:00-18:00' "
            f"(days: {', '.join(WEEKDAYS)}, ranges with '-', lists with ',')"
        )
    days = _days(m.group(1), text)
    end_h, end_m = int(m.group(4)), int(m.group(5))
    try:
        start = time(int(m.group(2)), int(m.group(3)))
        end = time(0) if (end_h, end_m) == (24, 0) else time(end_h, end_m)  # 24:00 = midnight
    except ValueError as exc:
        raise ScheduleError(f"schedule {text!r}: {exc}") from None
    return Schedule(frozenset(days), start, end, raw)


def _days(spec: str, text: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(e not in WEEKDAYS for e in ends):
            raise ScheduleError(f"schedule {text!r}: unknown day(s) {part!r}; days are {', '.join(WEEKDAYS)}")
        lo, hi = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        out.update(range(lo, hi + 1) if lo <= hi else [*range(lo, 7), *range(0, hi + 1)])
    return out


ALWAYS = Schedule(frozenset(range(7)), time(0), time(0), "24x7")


@dataclass(frozen=True, slots=True)
class Holder:
    """Someone who holds (or held) access: from HR or the vendor list."""

    person_id: str
    name: str
    holder_type: HolderType = "employee"
    org_unit: str = ""
    left_at: datetime | None = None  # employment (or the contract) ended


@dataclass(frozen=True, slots=True)
class Grant:
    """One access right: a holder's credential for zones on a schedule, with who asked, approved, set it."""

    grant_id: str
    person_id: str
    credential_id: str
    zones: tuple[str, ...]
    valid_from: datetime
    valid_to: datetime | None = None
    schedule: Schedule = ALWAYS
    requester: str = ""
    approver: str = ""
    implementer: str = ""
    ticket: str = ""
    work_order: str = ""

    def valid_at(self, at: datetime) -> bool:
        """The grant is in force at `at` (valid_to excluded)."""
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def covers(self, zone: str) -> bool:
        """The grant opens doors of `zone`."""
        return ALL_ZONES in self.zones or zone in self.zones


@dataclass(frozen=True, slots=True)
class Badge:
    """One badge event from a panel: when, which door (and its zone), which credential, the verdict."""

    at: datetime
    door: str
    zone: str
    credential_id: str
    granted: bool = True
    direction: Direction = "in"


@dataclass(frozen=True, slots=True)
class DoorEvent:
    """A door state change seen on the bus (open, forced, held_open, closed): evidence without an export."""

    at: datetime
    device: str
    room: str
    state: str


@dataclass(frozen=True, slots=True)
class GrantChange:
    """One audited change of a stored grant: when it was recorded, by whom, the grant before and after."""

    at: datetime
    actor: str
    action: str  # create | update
    before: Mapping[str, Any] | None
    after: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FlagRules:
    """The thresholds of the flags (the defaults follow docs/compliance.md's sources)."""

    dormant_days: int = 90  # NIST SP 800-53 PE-2 review at least every 90 days; "no use in >= 90 days"
    escort_window: timedelta = field(default=timedelta(seconds=120))  # an escort badges within +-2 min
    # Two doors badged closer in time than this: one card in two hands.
    min_travel: timedelta = field(default=timedelta(seconds=60))
