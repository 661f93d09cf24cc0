"""The access-rights flags against tests/golden/access/ (its README says how), and the schedules."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance.access.flags import FLAG_CODES, grant_flags
from compliance.access.model import ALWAYS, Badge, FlagRules, Grant, Holder, Schedule, ScheduleError

GOLDEN = Path(__file__).parent / "golden" / "access"
TZ = ZoneInfo("Asia/Taipei")
CASES = sorted(GOLDEN.glob("*/*.json"))


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _holder(raw: dict[str, Any]) -> Holder:
    return Holder(raw["person_id"], raw["name"], raw.get("holder_type", "employee"), raw.get("org_unit", ""),
                  _at(raw.get("left_at")))  # fmt: skip


def _grant(raw: dict[str, Any]) -> Grant:
    valid_from = _at(raw["valid_from"])
    assert valid_from is not None
    text = {k: raw.get(k, "") for k in ("requester", "approver", "implementer", "ticket", "work_order")}
    return Grant(raw["grant_id"], raw["person_id"], raw["credential_id"], tuple(raw["zones"]), valid_from,
                 _at(raw.get("valid_to")), Schedule.parse(raw.get("schedule", "24x7")), **text)  # fmt: skip


def _badge(raw: dict[str, Any]) -> Badge:
    at = _at(raw["at"])
    assert at is not None
    return Badge(at, raw["door"], raw["zone"], raw["credential_id"], raw.get("granted", True),
                 raw.get("direction", "in"))  # fmt: skip


def _rules(raw: dict[str, Any]) -> FlagRules:
    base = FlagRules()
    return FlagRules(
        dormant_days=raw.get("dormant_days", base.dormant_days),
        escort_window=timedelta(seconds=raw.get("escort_window_s", base.escort_window.total_seconds())),
        min_travel=timedelta(seconds=raw.get("min_travel_s", base.min_travel.total_seconds())),
    )


def test_every_flag_has_golden_cases() -> None:
    folders = {p.parent.name for p in CASES}
    assert folders == set(FLAG_CODES)
    for code in FLAG_CODES:
        names = [p.stem for p in CASES if p.parent.name == code]
        assert any(n.startswith("flag") for n in names), f"{code}: no case that raises it"
        # NO_APPROVAL's pass is every other case (all of them name an approver).
        assert code == "NO_APPROVAL" or any(n.startswith("pass") for n in names), f"{code}: no pass case"


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    holders = {h.person_id: h for h in map(_holder, case["holders"])}
    grants = [_grant(g) for g in case["grants"]]
    events = [_badge(e) for e in case["events"]]
    now = _at(case["now"])
    assert now is not None
    got = grant_flags(holders, grants, events, now, TZ, _rules(case.get("rules", {})))
    assert {gid: [f.code for f in flags] for gid, flags in got.items()} == case["expected"], case["_comment"]
    for gid, wanted in case.get("expected_evidence", {}).items():
        for code, snippets in wanted.items():
            flag = next(f for f in got[gid] if f.code == code)
            text = " | ".join((flag.reason_zh, flag.reason_en, *flag.evidence))
            for snippet in snippets:
                assert snippet in text, (code, snippet, text)
    for flags in got.values():
        for f in flags:
            assert f.reason_zh
            assert f.reason_en


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_the_zone_the_times_come_in_changes_nothing(zone: str) -> None:
    """The flags compare instants (in UTC inside): every golden case's times given in another zone, the
    events in one zone and the grants and `now` in others, give the same flags and the same evidence."""
    other = ZoneInfo(zone)

    def moved(items: list[dict[str, Any]], keys: tuple[str, ...], tz: ZoneInfo) -> list[dict[str, Any]]:
        return [{k: (datetime.fromisoformat(v).astimezone(tz).isoformat() if k in keys and v else v)
                 for k, v in item.items()} for item in items]  # fmt: skip

    for path in CASES:
        case = json.loads(path.read_text(encoding="utf-8"))
        holders = [_holder(h) for h in case["holders"]]
        now = _at(case["now"])
        assert now is not None
        rules = _rules(case.get("rules", {}))
        want = grant_flags({h.person_id: h for h in holders}, [_grant(g) for g in case["grants"]],
                           [_badge(e) for e in case["events"]], now, TZ, rules)  # fmt: skip
        got = grant_flags(
            {h.person_id: h for h in map(_holder, moved(case["holders"], ("left_at",), other))},
            [_grant(g) for g in moved(case["grants"], ("valid_from", "valid_to"), ZoneInfo("Europe/Berlin"))],
            [_badge(e) for e in moved(case["events"], ("at",), other)],
            now.astimezone(ZoneInfo("Pacific/Auckland")),
            TZ,
            rules,
        )
        assert got == want, path


def test_events_after_now_do_not_count() -> None:
    now = datetime(2026, 12, 31, 10, tzinfo=TZ)
    grant = Grant("G1", "E1", "C1", ("mr1",), datetime(2026, 1, 5, tzinfo=TZ), approver="A", requester="R")
    later = Badge(now + timedelta(seconds=1), "D", "mr1", "C1")
    assert [f.code for f in grant_flags({}, [grant], [later], now, TZ)["G1"]] == ["DORMANT_90D"]


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("24x7", set(range(7)), time(0), time(0)),
        ("Mon-Fri 08:00-18:00", {0, 1, 2, 3, 4}, time(8), time(18)),
        ("mon,wed,fri 09:00-17:30", {0, 2, 4}, time(9), time(17, 30)),
        ("fri-mon 22:00-06:00", {4, 5, 6, 0}, time(22), time(6)),
        ("sat-sun 00:00-24:00", {5, 6}, time(0), time(0)),
    ],
)
def test_schedules_parse(text: str, days: set[int], start: time, end: time) -> None:
    s = Schedule.parse(text)
    assert (s.days, s.start, s.end) == (frozenset(days), start, end)


@pytest.mark.parametrize("text", ["weekdays", "mon-fri 8-18", "mon-xyz 08:00-18:00", "mon 25:00-26:00", ""])
def test_a_bad_schedule_names_the_valid_forms(text: str) -> None:
    with pytest.raises(ScheduleError, match=r"schedule .*(expected '24x7'|days are|hour must be)"):
        Schedule.parse(text)


def test_always_allows_every_moment() -> None:
    start = datetime(2026, 12, 28, tzinfo=TZ)
    assert all(ALWAYS.allows(start + timedelta(minutes=37 * i), TZ) for i in range(300))
