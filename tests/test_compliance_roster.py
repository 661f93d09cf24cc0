"""compliance.roster.on_duty: who the door shows now and next, from the duty roster records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from compliance.kinds import DutyShift
from compliance.roster import on_duty

T = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)


def shift(name: str, start_h: int, end_h: int, room: str | None = None) -> DutyShift:
    return DutyShift(
        operator=name, starts_at=T + timedelta(hours=start_h), ends_at=T + timedelta(hours=end_h), room=room
    )


def test_the_rooms_own_shift_wins_over_an_all_rooms_one_and_the_next_follows_it() -> None:
    shifts = [
        shift("全區 A", 0, 12),
        shift("主機房 B", 2, 6, "mr1"),
        shift("全區 C", 12, 24),
        shift("D", 6, 9, "gen1"),
    ]
    mr1 = on_duty(shifts, "mr1", T + timedelta(hours=3))
    assert (mr1.now and mr1.now.operator, mr1.next and mr1.next.operator) == ("主機房 B", "全區 C")
    gen = on_duty(shifts, "gen1", T + timedelta(hours=3))
    assert (gen.now and gen.now.operator, gen.next and gen.next.operator) == ("全區 A", "全區 C")


def test_ends_are_half_open_and_a_gap_has_nobody_but_the_next_shift() -> None:
    shifts = [shift("A", 0, 8), shift("B", 10, 18)]
    at_end = on_duty(shifts, "mr1", T + timedelta(hours=8))
    assert at_end.now is None
    assert at_end.next is not None
    assert at_end.next.operator == "B"
    assert on_duty(shifts, None, T + timedelta(hours=20)) == on_duty([], "mr1", T)
