"""The pure alert lifecycle with an injected clock: grouping, silences and maintenance windows,
inhibition (engine.inhibits with the rules' `inhibits`), flap damping, resolved-once, escalation and
acknowledgement; routing and retry delays. Nothing here touches a database or sleeps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine import AlertEvent
from alerts.lifecycle import (
    AlertView,
    HistoryEntry,
    NotificationPlan,
    Policy,
    RetryPolicy,
    Route,
    SilenceView,
    decide,
    rules_by_id,
)
from siteconfig.alert_rules import RuleSet
from siteconfig.alerts_config import AlertsConfig

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
POLICY = Policy(
    routes=(Route(("ops",)),),
    escalation_channels=("boss",),
    group_wait_s=0,
    renotify_every_s=600,
    max_renotify=2,
    flap_window_s=600,
    flap_max_notifications=2,
)
RULES = rules_by_id(
    RuleSet.model_validate(
        {
            "rules": [
                {"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27},
                {
                    "id": "offline",
                    "kind": "offline",
                    "inhibits": ["hot", "low-input"],
                    "inhibit_equal": ["site", "room", "device"],
                },
                {"id": "on-battery", "kind": "match", "metric": "on_battery", "equals": True,
                 "inhibits": ["low-input"], "inhibit_equal": ["site", "device"]},
                {"id": "low-input", "kind": "threshold", "metric": "input_voltage_v", "op": "below",
                 "value": 200},
            ]
        }
    )
)  # fmt: skip


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def ev(
    kind: str,
    s: float,
    device: str = "env-1",
    rule: str = "hot",
    room: str = "room-a",
    started: float | None = None,
    severity: str = "warning",
) -> AlertEvent:
    metric = {"hot": "temp_c", "low-input": "input_voltage_v", "on-battery": "on_battery"}.get(rule)
    labels = {"site": "tpe1", "room": room, "device": device}
    key = f"{rule}:tpe1:{room}:{device}"
    if metric is not None:
        labels["metric"] = metric
        key += f":{metric}"
    msg = f"{device} {rule}"
    return AlertEvent(
        kind,  # type: ignore[arg-type]
        rule,
        key,
        severity,  # type: ignore[arg-type]
        labels,
        28.5,
        27.0,
        at(started if started is not None else s),
        at(s),
        {},
        {"zh_TW": {"forecast": "約 5 分鐘後達 30"}, "en": {"forecast": "30 in about 5 min"}},
        {"zh_TW": ("已恢復：" if kind == "resolved" else "") + msg, "en": msg},  # noqa: RUF001
    )


def key(device: str = "env-1", rule: str = "hot", room: str = "room-a") -> str:
    return ev("firing", 0, device, rule, room).dedup_key


class Life:
    """Keeps what the store would keep between calls."""

    def __init__(self, policy: Policy = POLICY) -> None:
        self.policy = policy
        self.alerts: dict[str, AlertView] = {}
        self.history: list[HistoryEntry] = []
        self.plans: list[tuple[float, NotificationPlan]] = []
        self.silences: list[SilenceView] = []

    def step(self, s: float, events: Sequence[AlertEvent] = ()) -> list[NotificationPlan]:
        d = decide(self.alerts.values(), events, self.silences, RULES, self.policy, at(s))
        for a in d.alerts:
            self.alerts[a.key] = a
        self.history += d.history
        self.plans += [(s, p) for p in d.notifications]
        return d.notifications

    def ack(self, k: str, s: float) -> None:
        self.alerts[k] = replace(self.alerts[k], acked_by="ops", acked_at=at(s))

    def silence(self, matchers: dict[str, Any], start: float, end: float, kind: str = "silence") -> None:
        self.silences.append(
            SilenceView(len(self.silences) + 1, kind, matchers, at(start), at(end))  # type: ignore[arg-type]
        )

    def whats(self, k: str) -> list[str]:
        return [h.what for h in self.history if h.key == k]


def kinds(plans: Iterable[NotificationPlan]) -> list[tuple[str, tuple[str, ...], int]]:
    return [(p.kind, p.keys, p.level) for p in plans]


# ------------------------------------------------------------------------------------ fire, resolve


def test_a_new_alert_is_notified_once_and_a_replay_is_not_new() -> None:
    life = Life()
    assert kinds(life.step(0, [ev("firing", 0)])) == [("firing", (key(),), 0)]
    assert life.plans[0][1].channels == ("ops",)
    assert life.step(5, [ev("firing", 0)]) == []  # the same event again (a replay)
    assert life.step(6, [ev("firing", 6, started=0)]) == []  # fired again without resolving
    a = life.alerts[key()]
    assert (a.state, a.notify_count, a.notified_at) == ("firing", 1, at(0))
    assert life.whats(key()) == ["fired"]


def test_resolved_notifies_once_and_only_after_a_firing_notice() -> None:
    life = Life()
    life.step(0, [ev("firing", 0)])
    assert kinds(life.step(60, [ev("resolved", 60, started=0)])) == [("resolved", (key(),), 0)]
    assert life.step(61, [ev("resolved", 60, started=0)]) == []  # replayed resolve
    a = life.alerts[key()]
    assert (a.state, a.resolved_at, a.texts["resolved"]["zh_TW"]) == ("resolved", at(60), "已恢復：env-1 hot")  # noqa: RUF001
    assert life.whats(key()) == ["fired", "resolved"]


def test_an_alert_resolved_within_the_group_wait_is_never_notified() -> None:
    life = Life(replace(POLICY, group_wait_s=30))
    assert life.step(0, [ev("firing", 0)]) == []
    assert life.step(10, [ev("resolved", 10, started=0)]) == []
    assert life.step(100) == []
    assert life.alerts[key()].state == "resolved"  # stored, visible
    assert "never notified" in (life.history[-1].note or "")


def test_a_resolve_for_an_alert_never_stored_is_recorded_not_notified() -> None:
    life = Life()
    assert life.step(0, [ev("resolved", 0)]) == []
    assert life.alerts[key()].state == "resolved"


def test_a_refire_is_a_new_episode_ack_and_escalation_start_over() -> None:
    life = Life(replace(POLICY, flap_window_s=60))
    life.step(0, [ev("firing", 0)])
    life.ack(key(), 10)
    life.step(20, [ev("resolved", 20, started=0)])
    assert kinds(life.step(1000, [ev("firing", 1000)])) == [("firing", (key(),), 0)]
    a = life.alerts[key()]
    assert (a.acked, a.escalation_level, a.started_at, a.resolved_at) == (False, 0, at(1000), None)
    assert a.notify_count == 3  # firing, resolved, firing


# ------------------------------------------------------------------------------------------ grouping


def test_alerts_of_one_rule_in_one_room_within_the_group_wait_are_one_summary() -> None:
    life = Life(replace(POLICY, group_wait_s=30))
    assert life.step(0, [ev("firing", 0, "env-1")]) == []
    assert life.step(10, [ev("firing", 10, "env-2"), ev("firing", 10, "env-9", room="room-b")]) == []
    assert life.step(20, [ev("firing", 20, "env-3")]) == []
    plans = life.step(30)
    assert kinds(plans) == [("summary", (key("env-1"), key("env-2"), key("env-3")), 0)]
    assert plans[0].key == f"summary:tpe1:room-a:{int(at(30).timestamp())}:hot"
    # room-b's alert waits its own 30 s, alone: a plain firing notice.
    assert kinds(life.step(40)) == [("firing", (key("env-9", room="room-b"),), 0)]
    # A late joiner after the flush is a notice of its own.
    life.step(50, [ev("firing", 50, "env-4")])
    assert kinds(life.step(80)) == [("firing", (key("env-4"),), 0)]
    assert all(life.alerts[key(d)].notified_at == at(30) for d in ("env-1", "env-2", "env-3"))


def test_different_rules_in_one_room_are_not_grouped() -> None:
    life = Life()
    plans = life.step(0, [ev("firing", 0, "ups-1", rule="low-input"), ev("firing", 0, "env-1")])
    assert sorted(kinds(plans)) == [
        ("firing", (key("env-1"),), 0),
        ("firing", (key("ups-1", rule="low-input"),), 0),
    ]


def test_a_summary_takes_the_highest_severity_route() -> None:
    policy = replace(POLICY, routes=(Route(("ops",)), Route(("pager",), frozenset({"critical"}))))
    life = Life(policy)
    plans = life.step(0, [ev("firing", 0, "env-1"), ev("firing", 0, "env-2", severity="critical")])
    assert [(p.kind, p.channels) for p in plans] == [("summary", ("ops", "pager"))]


# ----------------------------------------------------------------------------- silences, maintenance


@pytest.mark.parametrize(
    ("matchers", "silenced"),
    [
        ({"device": "env-1"}, True),
        ({"device": "env-*"}, True),
        ({"device": ["env-2", "env-1"]}, True),
        ({"rule": "hot", "room": "room-a"}, True),
        ({"rule": "hot", "room": "room-b"}, False),  # every matcher must match
        ({"zone": "cold-1"}, False),  # a label the alert lacks never matches
        ({"rule": "hot*"}, True),
    ],
)
def test_a_silenced_alert_is_stored_and_visible_but_not_notified(
    matchers: dict[str, Any], silenced: bool
) -> None:
    life = Life()
    life.silence(matchers, 0, 3600)
    plans = life.step(10, [ev("firing", 10)])
    a = life.alerts[key()]
    assert a.state == "firing"
    if silenced:
        assert (plans, a.suppressed, life.whats(key())) == ([], "silence:1", ["fired", "silenced"])
    else:
        assert kinds(plans) == [("firing", (key(),), 0)]


def test_when_a_maintenance_window_ends_a_still_firing_alert_is_notified() -> None:
    life = Life()
    life.silence({"room": "room-a"}, 0, 600, kind="maintenance")
    assert life.step(10, [ev("firing", 10)]) == []
    assert life.alerts[key()].suppressed == "maintenance:1"
    assert life.step(599) == []
    assert kinds(life.step(600)) == [("firing", (key(),), 0)]
    assert life.alerts[key()].suppressed is None


def test_an_alert_that_resolves_inside_the_window_is_never_notified() -> None:
    life = Life()
    life.silence({"room": "room-a"}, 0, 600, kind="maintenance")
    life.step(10, [ev("firing", 10)])
    assert life.step(20, [ev("resolved", 20, started=10)]) == []
    assert life.step(700) == []


def test_a_silence_that_starts_later_is_not_in_force_yet() -> None:
    life = Life()
    life.silence({"device": "env-1"}, 100, 200)
    assert kinds(life.step(0, [ev("firing", 0)])) == [("firing", (key(),), 0)]


def test_a_silence_stops_the_reminders_of_a_notified_alert() -> None:
    life = Life()
    life.step(0, [ev("firing", 0)])
    life.silence({"device": "env-1"}, 100, 5000)
    assert life.step(600) == []
    assert life.step(1800) == []
    assert life.alerts[key()].escalation_level == 0


# -------------------------------------------------------------------------------------- inhibition


def test_a_device_offline_alert_inhibits_that_devices_metric_alerts_only() -> None:
    life = Life()
    plans = life.step(
        0,
        [ev("firing", 0, "env-1", rule="offline"), ev("firing", 0, "env-1"), ev("firing", 0, "env-2")],
    )
    assert sorted(kinds(plans)) == [
        ("firing", (key("env-2"),), 0),
        ("firing", (key("env-1", rule="offline"),), 0),
    ]
    hot = life.alerts[key("env-1")]
    assert hot.suppressed == f"inhibited:{key('env-1', rule='offline')}"
    assert life.whats(key("env-1")) == ["fired", "inhibited"]
    # The device comes back and its temperature is still too high: now it is news.
    assert kinds(life.step(60, [ev("resolved", 60, "env-1", rule="offline", started=0)])) == [
        ("resolved", (key("env-1", rule="offline"),), 0),
        ("firing", (key("env-1"),), 0),
    ]


def test_on_battery_inhibits_input_voltage_alerts_of_that_ups() -> None:
    life = Life()
    life.step(0, [ev("firing", 0, "ups-1", rule="on-battery")])
    assert life.step(5, [ev("firing", 5, "ups-1", rule="low-input")]) == []
    assert kinds(life.step(5, [ev("firing", 5, "ups-2", rule="low-input")])) == [
        ("firing", (key("ups-2", rule="low-input"),), 0)
    ]
    # An inhibited alert gets no reminders either.
    assert [p.keys for p in life.step(700)] == [
        (key("ups-1", rule="on-battery"),),
        (key("ups-2", rule="low-input"),),
    ]


def test_an_alert_notified_before_its_inhibitor_fired_stays_and_its_reminders_stop() -> None:
    life = Life()
    life.step(0, [ev("firing", 0)])
    life.step(100, [ev("firing", 100, rule="offline")])
    assert [p.keys for p in life.step(700)] == [(key(rule="offline"),)]


# ---------------------------------------------------------------------------------------- flapping


def test_a_flapping_alert_gets_at_most_k_firing_notices_per_window() -> None:
    life = Life()  # flap window 600 s, 2 notices
    out = []
    for i in range(5):  # fires every 60 s, resolves 30 s later
        out += life.step(60 * i, [ev("firing", 60 * i)])
        out += life.step(60 * i + 30, [ev("resolved", 60 * i + 30, started=60 * i)])
    assert [p.kind for p in out] == ["firing", "resolved", "firing", "resolved"]
    assert life.alerts[key()].state == "resolved"
    assert "flapping" in life.whats(key())


def test_a_flapping_alert_that_stays_firing_is_notified_when_the_window_has_room() -> None:
    life = Life()
    life.step(0, [ev("firing", 0)])
    life.step(30, [ev("resolved", 30, started=0)])
    life.step(60, [ev("firing", 60)])
    life.step(90, [ev("resolved", 90, started=60)])
    assert life.step(120, [ev("firing", 120)]) == []  # third within 600 s: held back
    assert life.alerts[key()].suppressed == "flapping"
    assert life.step(599) == []
    assert kinds(life.step(600)) == [("firing", (key(),), 0)]  # the notice at 0 left the window


Step = tuple[int, bool]  # (seconds after the previous step, fire (True) or resolve)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 400), st.booleans()), max_size=40),
    window=st.sampled_from([60, 300, 600]),
    k=st.integers(1, 3),
    wait=st.sampled_from([0, 10, 45]),
)
def test_flap_and_resolve_properties(steps: list[Step], window: int, k: int, wait: int) -> None:
    """Whatever the fire/resolve pattern: at most k firing notices in any flap window; a resolved notice
    only after a firing notice of the same episode, and at most one per episode."""
    life = Life(replace(POLICY, flap_window_s=window, flap_max_notifications=k, group_wait_s=wait))
    t, firing, started = 0, False, 0
    for dt, fire in steps:
        t += dt
        if fire and not firing:
            life.step(t, [ev("firing", t)])
            firing, started = True, t
        elif not fire and firing:
            life.step(t, [ev("resolved", t, started=started)])
            firing = False
        else:
            life.step(t)
    notices = [s for s, p in life.plans if p.kind == "firing"]
    for i, s in enumerate(notices):
        assert len([x for x in notices[i:] if x - s < window]) <= k
    told = False
    for _s, p in life.plans:
        if p.kind == "firing":
            assert not told
            told = True
        elif p.kind == "resolved":
            assert told
            told = False


# -------------------------------------------------------------------------------------- escalation


@pytest.mark.parametrize(
    ("s", "level", "channels"),
    [(599, None, None), (600, 1, ("ops",)), (1200, 2, ("ops",)), (1800, 3, ("boss",)), (2400, None, None)],
)
def test_reminders_every_n_then_the_escalation_list_then_nothing(
    s: int, level: int | None, channels: tuple[str, ...] | None
) -> None:
    life = Life()
    life.step(0, [ev("firing", 0)])
    for earlier in (599, 600, 1200, 1800, 2400):
        if earlier >= s:
            break
        life.step(earlier)
    plans = life.step(s)
    if level is None:
        assert plans == []
    else:
        assert [(p.kind, p.level, p.channels, p.to_escalation_list) for p in plans] == [
            ("escalation", level, channels, level == 3)
        ]


def test_one_step_per_call_after_a_long_pause() -> None:
    life = Life()
    life.step(0, [ev("firing", 0)])
    assert [p.level for p in life.step(100_000)] == [1]
    assert [p.level for p in life.step(100_001)] == []


def test_ack_stops_the_escalation() -> None:
    life = Life()
    life.step(0, [ev("firing", 0)])
    assert [p.level for p in life.step(600)] == [1]
    life.ack(key(), 700)
    assert life.step(1200) == []
    assert life.step(5000) == []
    assert life.whats(key()) == ["fired", "escalated"]


def test_an_alert_acknowledged_before_its_notice_is_not_notified() -> None:
    life = Life(replace(POLICY, group_wait_s=60))
    life.step(0, [ev("firing", 0)])
    life.ack(key(), 10)
    assert life.step(60) == []
    assert life.step(700) == []


def test_resolved_goes_to_everyone_told_including_the_escalation_list() -> None:
    life = Life()
    life.step(0, [ev("firing", 0)])
    for s in (600, 1200, 1800):
        life.step(s)
    (plan,) = life.step(1900, [ev("resolved", 1900, started=0)])
    assert (plan.kind, plan.level, plan.channels) == ("resolved", 3, ("ops", "boss"))


def test_no_reminders_when_renotify_is_off() -> None:
    life = Life(replace(POLICY, renotify_every_s=0))
    life.step(0, [ev("firing", 0)])
    assert life.step(10_000) == []


def test_without_an_escalation_list_reminders_stop_at_max() -> None:
    life = Life(replace(POLICY, escalation_channels=()))
    life.step(0, [ev("firing", 0)])
    assert [p.level for s in (600, 1200, 1800, 2400) for p in life.step(s)] == [1, 2]


# ------------------------------------------------------------------------------------ policy, retry


def test_routes_by_severity_and_room() -> None:
    policy = Policy(
        routes=(
            Route(("mail",)),
            Route(("line", "mail"), frozenset({"critical"})),
            Route(("room-b-team",), rooms=frozenset({"room-b"})),
        ),
        escalation_channels=("boss",),
        max_renotify=1,
    )
    assert policy.channels("warning", "room-a", 0) == ("mail",)
    assert policy.channels("critical", "room-b", 1) == ("mail", "line", "room-b-team")
    assert policy.channels("critical", "room-b", 2) == ("boss",)
    assert policy.channels("info", None, 0) == ("mail",)
    assert policy.resolved_channels("warning", "room-a", 2) == ("mail", "boss")


def test_policy_from_the_site_files_alerts_section() -> None:
    cfg = AlertsConfig.model_validate(
        {
            "channels": {"ops": {"type": "mqtt"}, "boss": {"type": "mqtt"}},
            "routes": [{"channels": ["ops"], "severities": ["critical"], "rooms": ["room-a"]}],
            "escalation": {"renotify_every_s": 300, "max_renotify": 1, "then_channels": ["boss"]},
            "group_wait_s": 5,
            "flap_window_s": 120,
            "flap_max_notifications": 3,
        }
    )
    p = Policy.from_config(cfg)
    assert p == Policy(
        (Route(("ops",), frozenset({"critical"}), frozenset({"room-a"})),), ("boss",), 5.0, 300.0, 1, 120.0, 3
    )


def test_retry_delay_doubles_up_to_the_cap() -> None:
    r = RetryPolicy(first_s=10, cap_s=100)
    assert [r.delay(n) for n in range(1, 7)] == [10, 20, 40, 80, 100, 100]
