# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The per-channel rate limit summarises instead of dropping: pure, clock injected."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.notify.base import SEVERITY_RANK, Notification
from alerts.notify.summarise import SUMMARY_SCHEMA, Budget, Pending, plan

T0 = 1_700_000_000.0


def note(
    i: int,
    room: str | None = "機房A",
    severity: str = "warning",
    site: str = "tpe1",
    room_name: str | None = None,
    kind: str = "firing",
) -> Notification:
    labels: dict[str, Any] = {"site": site, "device": f"th-{i}"}
    if room is not None:
        labels["room"] = room
    if room_name is not None:
        labels["room_name"] = room_name
    return Notification(
        key=f"temp_high:{site}:{room}:th-{i}",
        kind=kind,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        subject_zh=f"溫度過高 th-{i}",
        subject_en=f"Temperature high th-{i}",
        body_zh="",
        body_en="",
        payload={"schema": "roomguard.alert/1", "id": f"a{i}", "labels": labels},
    )


def test_within_budget_everything_goes_out_as_is() -> None:
    pending = [Pending(note(i), T0 + i) for i in range(3)]
    p = plan(Budget(5, 60), pending, now=T0 + 10)
    assert p.sent == (0, 1, 2)
    assert p.summaries == ()
    assert p.notifications == tuple(x.notification for x in pending)
    assert p.history == (T0 + 10,) * 3


def test_over_budget_the_rest_becomes_one_summary_per_room() -> None:
    pending = [Pending(note(i), T0 + i) for i in range(15)]
    pending += [Pending(note(100 + i, room="機房B"), T0 + i) for i in range(4)]
    p = plan(Budget(5, 60), pending, now=T0 + 20)
    assert p.sent == (0, 15, 1, 16, 2)  # the earliest five, in time order
    by_room = {s.room: s for s in p.summaries}
    assert set(by_room) == {"機房A", "機房B"}
    a = by_room["機房A"].notification
    assert a.kind == "summary"
    assert a.subject_zh == "另有 12 則告警：機房A"
    assert a.subject_en == "12 more alerts in 機房A"
    assert a.payload["schema"] == SUMMARY_SCHEMA
    assert a.payload["count"] == 12
    assert [x["id"] for x in a.payload["alerts"]] == [pending[i].notification.key for i in range(3, 15)]
    assert a.payload["alerts"][0]["alert"] == pending[3].notification.payload
    assert a.payload["labels"] == {"site": "tpe1", "room": "機房A"}
    assert "…以及另外 2 則" in a.body_zh  # ten subjects listed
    assert "… and 2 more" in a.body_en
    b = by_room["機房B"].notification
    assert b.subject_zh == "另有 2 則告警：機房B"
    assert b.subject_en == "2 more alerts in 機房B"
    assert p.notifications[5:] == (b, a)  # rooms in the order of their earliest held alert


def test_room_name_from_the_labels_else_the_room_id_else_the_site() -> None:
    pending = [
        Pending(note(1, room="r1", room_name="機房A"), T0),
        Pending(note(2, room="r1", room_name="機房A"), T0),
        Pending(note(3, room=None), T0),
        Pending(note(4, room="r2"), T0),
    ]
    p = plan(Budget(0, 60), pending, now=T0)
    subjects = sorted(s.notification.subject_en for s in p.summaries)
    assert subjects == ["1 more alert in r2", "1 more alert in tpe1", "2 more alerts in 機房A"]
    named = next(s for s in p.summaries if s.room == "r1").notification
    assert named.payload["labels"] == {"site": "tpe1", "room": "r1", "room_name": "機房A"}


def test_same_room_id_in_two_sites_is_two_rooms() -> None:
    pending = [Pending(note(1, site="tpe1"), T0), Pending(note(2, site="khh1"), T0)]
    p = plan(Budget(0, 60), pending, now=T0)
    assert sorted(s.site or "" for s in p.summaries) == ["khh1", "tpe1"]


def test_critical_goes_first_when_the_budget_is_short() -> None:
    pending = [Pending(note(i), T0 + i) for i in range(4)] + [Pending(note(9, severity="critical"), T0 + 9)]
    p = plan(Budget(2, 60), pending, now=T0 + 10)
    assert p.sent == (0, 4)
    (s,) = p.summaries
    assert s.members == (1, 2, 3)
    assert s.notification.severity == "warning"


def test_summary_takes_the_highest_severity_it_counts() -> None:
    pending = [Pending(note(i, severity=sev), T0) for i, sev in enumerate(["critical", "info", "critical"])]
    p = plan(Budget(1, 60), pending, now=T0)
    (s,) = p.summaries
    assert s.notification.severity == "critical"


def test_history_spends_the_budget_until_it_leaves_the_window() -> None:
    budget = Budget(3, 60)
    first = plan(budget, [Pending(note(i), T0) for i in range(3)], now=T0)
    assert first.history == (T0, T0, T0)
    # 30 s later the window still holds the three sends: everything new is summarised.
    second = plan(budget, [Pending(note(10), T0 + 30)], now=T0 + 30, history=first.history)
    assert second.sent == ()
    assert len(second.summaries) == 1
    # The summary is a send too: it counts in the next window.
    assert second.history == (T0, T0, T0, T0 + 30)
    # At T0 + 60 the first three have left the window (it is (now - 60, now]); the summary has not.
    third = plan(
        budget, [Pending(note(i), T0 + 60) for i in range(20, 24)], now=T0 + 60, history=second.history
    )
    assert third.sent == (0, 1)
    assert third.history == (T0 + 30, *([T0 + 60] * 3))


def test_budget_is_validated() -> None:
    with pytest.raises(ValueError, match="count"):
        Budget(-1, 60)
    with pytest.raises(ValueError, match="window_s"):
        Budget(1, 0)


_rooms = st.sampled_from([None, "機房A", "機房B", "r3"])
_sites = st.sampled_from(["tpe1", "khh1"])
_sev = st.sampled_from(["info", "warning", "critical"])
_kinds = st.sampled_from(["firing", "resolved", "escalation", "acknowledged"])
_pending = st.lists(
    st.tuples(_rooms, _sites, _sev, _kinds, st.floats(min_value=0, max_value=600, allow_nan=False)),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    pending=_pending,
    count=st.integers(0, 10),
    window_s=st.floats(min_value=1, max_value=600),
    history=st.lists(st.floats(min_value=0, max_value=1200, allow_nan=False), max_size=15),
)
def test_nothing_is_lost(
    pending: list[tuple[str | None, str, str, str, float]], count: int, window_s: float, history: list[float]
) -> None:
    now = T0 + 600
    items = [
        Pending(note(i, room=room, site=site, severity=sev, kind=kind), T0 + dt)
        for i, (room, site, sev, kind, dt) in enumerate(pending)
    ]
    hist = [T0 + h for h in history]
    budget = Budget(count, window_s)
    p = plan(budget, items, now=now, history=hist)

    # Every input is either sent as is or counted in exactly one summary.
    members = [i for s in p.summaries for i in s.members]
    assert sorted([*p.sent, *members]) == list(range(len(items)))
    for s in p.summaries:
        payload = s.notification.payload
        assert payload["count"] == len(s.members)
        assert [a["id"] for a in payload["alerts"]] == [items[i].notification.key for i in s.members]
        assert str(len(s.members)) in s.notification.subject_zh
        assert str(len(s.members)) in s.notification.subject_en
        # One summary per room, and only members of that room.
        for i in s.members:
            labels = items[i].notification.payload["labels"]
            assert (labels.get("site"), labels.get("room")) == (s.site, s.room)
    rooms = [(s.site, s.room) for s in p.summaries]
    assert len(rooms) == len(set(rooms))

    # The budget holds for what goes out as is, and is used in full before anything is summarised.
    recent = sum(1 for t in hist if now - window_s < t <= now)
    free = max(0, count - recent)
    assert len(p.sent) == min(free, len(items))
    # Never a less severe one sent while a more severe one waits.
    if p.sent and members:
        assert min(SEVERITY_RANK[items[i].notification.severity] for i in p.sent) >= max(
            SEVERITY_RANK[items[i].notification.severity] for i in members
        )
    assert p.notifications == (
        *(items[i].notification for i in p.sent),
        *(s.notification for s in p.summaries),
    )
    # The history keeps the window's sends and adds this round's.
    assert len(p.history) == recent + len(p.notifications)
    assert all(now - window_s < t <= now for t in p.history)


def test_empty_input() -> None:
    p = plan(Budget(1, 60), [], now=T0)
    assert p.sent == ()
    assert p.summaries == ()
    assert p.notifications == ()
