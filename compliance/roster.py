"""Who is on duty in a room at an instant, from the duty roster records (CC-16000 (七)1, the posting at
the room's door); pure: the shifts and the clock are arguments. The status page and the door display
read it; the roster check (compliance.checks.duty) judges the roster's coverage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from compliance.kinds import DutyShift


@dataclass(frozen=True, slots=True)
class OnDuty:
    """The shift on now (None: nobody is posted) and the next one to start after it."""

    now: DutyShift | None
    next: DutyShift | None


def _covers(shift: DutyShift, room: str | None) -> bool:
    return shift.room is None or room is None or shift.room == room


def on_duty(shifts: Sequence[DutyShift], room: str | None, at: datetime) -> OnDuty:
    """The duty operator of `room` at `at` (a room's own shift before an all-rooms one; room None: any
    shift) and the next shift starting after the current one ends (or after `at` when nobody is on)."""
    mine = [s for s in shifts if _covers(s, room)]
    current = [s for s in mine if s.starts_at <= at < s.ends_at]
    # A shift posted for this very room wins over an all-rooms one; among equals the latest start.
    current.sort(key=lambda s: (s.room is not None, s.starts_at))
    chosen = current[-1] if current else None
    after = chosen.ends_at if chosen is not None else at
    upcoming = sorted(
        (s for s in mine if s.starts_at >= after and s is not chosen), key=lambda s: s.starts_at
    )
    return OnDuty(chosen, upcoming[0] if upcoming else None)
