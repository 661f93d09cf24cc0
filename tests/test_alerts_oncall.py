"""On-call routing: which shifts are on duty at an instant, in the site's time zone (alerts.oncall), and
a route with on_call reaching them through the lifecycle (alerts.lifecycle.Policy)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.lifecycle import AlertView, Policy, Route, decide
from alerts.oncall import Shift, active, on_call_channels, wall_instant
from siteconfig.alerts_config import AlertsConfig

TAIPEI = ZoneInfo("Asia/Taipei")
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")

DAY = Shift("day team", WEEKDAYS, time(8), time(18), ("day-line",))
NIGHT = Shift("night", WEEKDAYS, time(22), time(6), ("night-phone",))
WEEKEND = Shift("weekend", ("sat", "sun"), time(0), time(0), ("weekend-phone", "night-phone"))


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    """A site wall-clock time as the UTC instant the service's clock would give."""
    return datetime(*args, tzinfo=tz, fold=fold).astimezone(UTC)  # type: ignore[arg-type,misc]


# 2025-11-03 is a Monday; 2025-11-07 a Friday, 11-08 Saturday, 11-09 Sunday, 11-10 Monday.
@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ((2025, 11, 3, 7, 59), ()),  # Monday before the day shift
        ((2025, 11, 3, 8, 0), ("day-line",)),  # start is inside
        ((2025, 11, 3, 17, 59), ("day-line",)),
        ((2025, 11, 3, 18, 0), ()),  # end is outside
        ((2025, 11, 3, 22, 0), ("night-phone",)),
        ((2025, 11, 4, 5, 59), ("night-phone",)),  # Monday's night shift, on Tuesday morning
        ((2025, 11, 4, 6, 0), ()),
        ((2025, 11, 7, 23, 30), ("night-phone",)),  # Friday night
        ((2025, 11, 8, 3, 0), ("night-phone", "weekend-phone")),  # Friday's night runs into Saturday
        ((2025, 11, 8, 12, 0), ("weekend-phone", "night-phone")),  # weekend: 24 h shifts
        ((2025, 11, 9, 23, 59), ("weekend-phone", "night-phone")),
        ((2025, 11, 10, 0, 0), ()),  # Sunday's 24 h ends at Monday 00:00; no night started on Sunday
        ((2025, 11, 10, 5, 0), ()),
        ((2025, 11, 10, 9, 0), ("day-line",)),
    ],
)
def test_weekdays_weekend_and_across_midnight_in_taipei(
    when: tuple[int, ...], expected: tuple[str, ...]
) -> None:
    assert on_call_channels((DAY, NIGHT, WEEKEND), local(TAIPEI, *when), TAIPEI) == expected


def test_the_site_time_zone_decides_not_utc() -> None:
    # 2025-11-03 23:00 UTC is Tuesday 07:00 in Taipei: Monday's night shift (22:00 to 06:00) is over,
    # although it would still run in UTC.
    now = datetime(2025, 11, 3, 23, 0, tzinfo=UTC)
    assert on_call_channels((NIGHT,), now, TAIPEI) == ()
    assert on_call_channels((NIGHT,), now, UTC) == ("night-phone",)
    assert on_call_channels((DAY,), now + timedelta(hours=2), TAIPEI) == ("day-line",)  # 09:00 Tue


def test_start_equal_to_end_is_24_hours_from_start() -> None:
    shift = Shift("x", ("wed",), time(9), time(9), ("c",))
    assert not active(shift, local(TAIPEI, 2025, 11, 5, 8, 59), TAIPEI)
    assert active(shift, local(TAIPEI, 2025, 11, 5, 9, 0), TAIPEI)
    assert active(shift, local(TAIPEI, 2025, 11, 6, 8, 59), TAIPEI)
    assert not active(shift, local(TAIPEI, 2025, 11, 6, 9, 0), TAIPEI)


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        on_call_channels((DAY,), datetime(2025, 11, 3, 9), TAIPEI)


# Europe/Berlin: 2025-03-30 02:00 CET -> 03:00 CEST (01:00 UTC); 2025-10-26 03:00 CEST -> 02:00 CET
# (01:00 UTC). Both are Sundays.


def test_berlin_night_shift_is_7_hours_when_the_clocks_go_forward() -> None:
    sat_night = Shift("n", ("sat",), time(22), time(6), ("n",))
    assert not active(sat_night, local(BERLIN, 2025, 3, 29, 21, 59), BERLIN)
    assert active(sat_night, local(BERLIN, 2025, 3, 29, 22, 0), BERLIN)  # 21:00 UTC
    assert active(sat_night, local(BERLIN, 2025, 3, 30, 5, 59), BERLIN)  # 03:59 UTC, summer time
    assert not active(sat_night, local(BERLIN, 2025, 3, 30, 6, 0), BERLIN)  # 04:00 UTC
    assert local(BERLIN, 2025, 3, 30, 6, 0) - local(BERLIN, 2025, 3, 29, 22, 0) == timedelta(hours=7)


def test_berlin_night_shift_is_9_hours_when_the_clocks_go_back() -> None:
    sat_night = Shift("n", ("sat",), time(22), time(6), ("n",))
    start = local(BERLIN, 2025, 10, 25, 22, 0)  # 20:00 UTC, summer time
    end = local(BERLIN, 2025, 10, 26, 6, 0)  # 05:00 UTC, winter time
    assert end - start == timedelta(hours=9)
    assert active(sat_night, start, BERLIN)
    assert active(sat_night, end - timedelta(seconds=1), BERLIN)
    assert not active(sat_night, end, BERLIN)


def test_berlin_a_start_the_clock_skips_begins_at_the_jump() -> None:
    shift = Shift("early", ("sun",), time(2, 30), time(4), ("e",))
    jump = datetime(2025, 3, 30, 1, 0, tzinfo=UTC)  # 02:00 CET becomes 03:00 CEST
    assert wall_instant(jump.date(), time(2, 30), BERLIN) == jump
    assert not active(shift, jump - timedelta(seconds=1), BERLIN)  # 01:59:59 CET
    assert active(shift, jump, BERLIN)  # 03:00 CEST
    assert active(shift, local(BERLIN, 2025, 3, 30, 3, 59), BERLIN)
    assert not active(shift, local(BERLIN, 2025, 3, 30, 4, 0), BERLIN)


def test_berlin_an_end_the_clock_shows_twice_is_its_first_showing() -> None:
    shift = Shift("late", ("sat",), time(23), time(2, 30), ("l",))
    first = local(BERLIN, 2025, 10, 26, 2, 15, fold=0)  # 00:15 UTC, summer time
    again = local(BERLIN, 2025, 10, 26, 2, 15, fold=1)  # 01:15 UTC, winter time: the hour repeated
    assert again - first == timedelta(hours=1)
    assert active(shift, first, BERLIN)
    assert not active(shift, local(BERLIN, 2025, 10, 26, 2, 30, fold=0), BERLIN)
    assert not active(shift, again, BERLIN), "a shift does not come back in the repeated hour"


def test_the_site_files_shifts_work_as_they_are() -> None:
    cfg = AlertsConfig.model_validate(
        {
            "channels": {"ops": {"type": "mqtt"}, "phone": {"type": "mqtt"}},
            "routes": [{"channels": ["ops"], "on_call": True}],
            "on_call": [
                {"name": "A", "days": ["mon"], "start": "22:00", "end": "06:00", "channels": ["phone"]}
            ],
        }
    )
    assert on_call_channels(cfg.on_call, local(TAIPEI, 2025, 11, 4, 1, 0), TAIPEI) == ("phone",)
    policy = Policy.from_config(cfg, "Asia/Taipei")
    assert policy.routes == (Route(("ops",), on_call=True),)
    assert policy.on_call == (Shift("A", ("mon",), time(22), time(6), ("phone",)),)
    assert policy.tz == TAIPEI
    assert Policy.from_config(cfg, "Europe/Berlin").tz == BERLIN


# ------------------------------------------------------------------------------ through the policy

POLICY = Policy(
    routes=(
        Route(("mail",)),
        Route(("line",), frozenset({"critical"}), on_call=True),
    ),
    escalation_channels=("boss",),
    max_renotify=1,
    on_call=(NIGHT, WEEKEND),
    tz=TAIPEI,
)
MON_NIGHT = local(TAIPEI, 2025, 11, 3, 23, 0)
MON_NOON = local(TAIPEI, 2025, 11, 3, 12, 0)


def test_policy_adds_the_on_call_channels_only_to_routes_that_ask() -> None:
    assert POLICY.channels("critical", "r", 0, MON_NIGHT) == ("mail", "line", "night-phone")
    assert POLICY.channels("critical", "r", 0, MON_NOON) == ("mail", "line")
    assert POLICY.channels("warning", "r", 0, MON_NIGHT) == ("mail",)  # that route takes no warning
    assert POLICY.channels("critical", "r", 0) == ("mail", "line")  # no time: no on-call
    assert POLICY.channels("critical", "r", 1, MON_NIGHT) == ("mail", "line", "night-phone")  # reminder
    assert POLICY.channels("critical", "r", 2, MON_NIGHT) == ("boss",)  # the escalation list only
    # A resolution: those on duty at the last notice and now.
    assert POLICY.resolved_channels("critical", "r", 2, (MON_NIGHT, MON_NOON)) == (
        "mail",
        "line",
        "night-phone",
        "boss",
    )


def _alert(at: datetime) -> AlertView:
    return AlertView(
        key="hot/th-1",
        rule_id="hot",
        severity="critical",
        state="firing",
        labels={"site": "s", "room": "r", "device": "th-1"},
        value=35.0,
        limit=30.0,
        started_at=at,
        resolved_at=None,
        last_event_at=at,
        texts={"message": {"en": "hot"}},
        notify_after=at,
    )


def test_decide_plans_with_the_shift_on_duty_when_the_notice_is_planned() -> None:
    # Planned at 21:59:55 Monday (Taipei): the night shift is not on yet; at 22:00:05 it is told too.
    before = local(TAIPEI, 2025, 11, 3, 21, 59, 55)
    after = before + timedelta(seconds=10)
    d = decide([_alert(before)], [], [], {}, POLICY, before)
    assert [p.channels for p in d.notifications] == [("mail", "line")]
    d = decide([_alert(after)], [], [], {}, POLICY, after)
    assert [p.channels for p in d.notifications] == [("mail", "line", "night-phone")]
