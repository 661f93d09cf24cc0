# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The pure alert engine with an injected clock: every rule kind, hysteresis, hold-for, staleness, groups,
late and bad readings, state persistence. `now` is a datetime the test passes; nothing sleeps."""

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine import AlertEvent, EngineState, RuleIndex, evaluate, inhibits
from alerts.inputs import (
    EventInput,
    Input,
    Labels,
    Sample,
    StatusInput,
    collector_status_from_wire,
    event_from_wire,
    labels_from_ref,
    samples_from_poll,
)
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality, Value
from devices.wire import DeviceStatus, WireEvent
from siteconfig.alert_rules import RuleSet

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
ENV = Labels("tpe1", "room-a", "env-1", DeviceClass.ENV, zone="cold-1", rack="r01")
ENV2 = Labels("tpe1", "room-b", "env-2", DeviceClass.ENV, zone="cold-2", rack="r07", tags=(("owner", "ops"),))
UPS = Labels("tpe1", "room-a", "ups-1", DeviceClass.UPS)
GEN = Labels("tpe1", "room-a", "gen-1", DeviceClass.GENSET)
DOOR = Labels("tpe1", "room-a", "door-1", DeviceClass.DOOR)

HOT = {"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27, "clear": 26}


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def smp(metric: str, value: Value, s: float, lb: Labels = ENV, q: Quality = Quality.GOOD) -> Sample:
    return Sample(lb, metric, at(s), value, q)


def index(*rules: dict[str, Any]) -> RuleIndex:
    return RuleIndex(RuleSet.model_validate({"rules": list(rules)}))


class Run:
    """Feeds the engine call by call, keeping the state, as the alert process will."""

    def __init__(self, *rules: dict[str, Any]) -> None:
        self.index = index(*rules)
        self.state: EngineState | None = None
        self.events: list[AlertEvent] = []

    def step(self, now_s: float, inputs: Iterable[Input] = ()) -> list[AlertEvent]:
        self.state, out = evaluate(self.index, self.state, list(inputs), at(now_s))
        self.events += out
        return out

    def feed(self, metric: str, values: Sequence[tuple[float, Value]], lb: Labels = ENV) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        for s, v in values:
            out += self.step(s, [smp(metric, v, s, lb)])
        return out


def kinds(events: Iterable[AlertEvent]) -> list[tuple[str, str]]:
    return [(e.kind, e.dedup_key) for e in events]


# ---------------------------------------------------------------------------------------- threshold


def test_threshold_hysteresis_exactly_at_the_boundaries() -> None:
    run = Run(HOT)
    assert run.feed("temp_c", [(0, 25.0), (60, 27.0)]) == []  # at the limit is not above it
    fired = run.step(120, [smp("temp_c", 27.01, 120)])
    assert kinds(fired) == [("firing", "hot:tpe1:room-a:env-1:temp_c")]
    # Back under the trigger but above clear: still firing (hysteresis), no event.
    assert run.feed("temp_c", [(180, 26.5), (240, 27.0), (300, 26.01)]) == []
    resolved = run.step(360, [smp("temp_c", 26.0, 360)])  # exactly at clear resolves
    assert kinds(resolved) == [("resolved", "hot:tpe1:room-a:env-1:temp_c")]
    assert resolved[0].started_at == at(120)
    assert resolved[0].at == at(360)
    assert run.state is not None
    assert run.state.trackers == {}


def test_threshold_below_mirrors_above() -> None:
    run = Run(
        {"id": "cold", "kind": "threshold", "metric": "temp_c", "op": "below", "value": 15, "clear": 17}
    )
    assert run.feed("temp_c", [(0, 16.0), (60, 15.0)]) == []
    assert [e.kind for e in run.feed("temp_c", [(120, 14.9), (180, 16.9)])] == ["firing"]
    assert [e.kind for e in run.feed("temp_c", [(240, 17.0)])] == ["resolved"]


def test_firing_event_carries_labels_value_limit_and_messages() -> None:
    run = Run(
        {
            **HOT,
            "severity": "critical",
            "messages": {
                "zh-TW": "{room} {device} 溫度 {value} {unit}（上限 {limit}）",
                "en": "{device} {value}{unit}",
            },
        }
    )
    (ev,) = run.feed("temp_c", [(0, 28.5)])
    assert (ev.kind, ev.rule_id, ev.severity, ev.value, ev.limit) == ("firing", "hot", "critical", 28.5, 27.0)
    assert ev.labels == {
        "site": "tpe1",
        "room": "room-a",
        "device": "env-1",
        "class": "env",
        "zone": "cold-1",
        "rack": "r01",
        "metric": "temp_c",
    }
    assert ev.messages == {"zh_TW": "room-a env-1 溫度 28.5 °C（上限 27）", "en": "env-1 28.5°C"}
    assert ev.params["since"] == at(0).isoformat()


def test_forecast_in_the_message_counts_down_to_forecast_to() -> None:
    run = Run({**HOT, "value": 25, "clear": 24, "forecast_to": 27})
    out = run.feed("temp_c", [(i * 60, 20.0 + 0.8 * i) for i in range(8)])  # 20.0 … 25.6 °C, +0.8 °C/min
    (ev,) = out
    assert ev.value == 25.6
    assert ev.localized["zh_TW"]["forecast"] == "溫度每分鐘上升 0.8 °C，約 2 分鐘後達 27 °C"
    assert ev.localized["en"]["forecast"] == "+0.8 °C/min, 27 °C in about 2 min"
    assert ev.messages["en"] == "env-1 temp_c 25.6 °C above 25 °C; +0.8 °C/min, 27 °C in about 2 min"
    assert (
        ev.messages["zh_TW"] == "env-1 temp_c 25.6 °C，高於 25 °C；溫度每分鐘上升 0.8 °C，約 2 分鐘後達 27 °C"
    )


# ----------------------------------------------------------------------------------------- hold-for


def test_hold_for_fires_only_after_the_duration_and_resets_when_it_drops() -> None:
    run = Run({**HOT, "hold_for_s": 300})
    assert run.feed("temp_c", [(0, 28.0), (100, 28.0), (299, 28.0)]) == []
    assert run.state is not None
    assert run.state.open_alerts() == [("hot:tpe1:room-a:env-1:temp_c", "pending", at(0))]
    (ev,) = run.feed("temp_c", [(300, 28.0)])
    assert (ev.kind, ev.started_at, ev.at) == ("firing", at(0), at(300))

    reset = Run({**HOT, "hold_for_s": 300})
    # Drops back (to the trigger level, not even to clear) before 300 s: the timer starts again.
    assert reset.feed("temp_c", [(0, 28.0), (200, 27.0), (250, 28.0), (500, 28.0)]) == []
    (ev,) = reset.feed("temp_c", [(550, 28.0)])
    assert ev.started_at == at(250)


def test_hold_for_elapses_on_the_clock_without_new_readings() -> None:
    run = Run({**HOT, "hold_for_s": 300})
    run.feed("temp_c", [(0, 28.0)])
    assert run.step(299) == []
    (ev,) = run.step(300)
    assert (ev.kind, ev.at, ev.value) == ("firing", at(300), 28.0)


# ---------------------------------------------------------------------------------- bad and late


def test_bad_quality_is_no_data_never_a_value() -> None:
    run = Run(HOT)
    # A failed read does not fire, however its value slot looks.
    assert run.step(0, [smp("temp_c", None, 0, q=Quality.COMM_ERROR)]) == []
    assert run.step(10, [smp("temp_c", float("nan"), 10)]) == []  # NaN is no reading either
    assert [e.kind for e in run.feed("temp_c", [(60, 30.0)])] == ["firing"]
    # Nor does it clear: a sensor that stops answering is not a cool room.
    for q in (Quality.UNAVAILABLE, Quality.DECODE_ERROR, Quality.STALE, Quality.AUTH_ERROR):
        assert run.step(120, [smp("temp_c", None, 120 + list(Quality).index(q), q=q)]) == []
    assert run.state is not None
    assert run.state.series[("tpe1", "room-a", "env-1", "temp_c")].value == 30.0
    assert [e.kind for e in run.feed("temp_c", [(300, 25.0)])] == ["resolved"]


def test_late_and_duplicate_readings_are_ignored() -> None:
    run = Run(HOT)
    assert [e.kind for e in run.feed("temp_c", [(100, 30.0)])] == ["firing"]
    # An outbox replay of an older poll (cool then) and a redelivery of the same poll.
    assert run.step(130, [smp("temp_c", 20.0, 50), smp("temp_c", 20.0, 100)]) == []
    assert run.state is not None
    assert run.state.series[("tpe1", "room-a", "env-1", "temp_c")].value == 30.0
    # A late bad reading does not move the series either.
    run.step(140, [smp("temp_c", None, 90, q=Quality.COMM_ERROR)])
    assert run.state.series[("tpe1", "room-a", "env-1", "temp_c")].last_t == at(100).timestamp()


def test_inputs_of_one_call_are_judged_in_time_order() -> None:
    run = Run(HOT)
    out = run.step(200, [smp("temp_c", 25.0, 150), smp("temp_c", 30.0, 100)])
    assert [(e.kind, e.at) for e in out] == [("firing", at(100)), ("resolved", at(150))]


# --------------------------------------------------------------------------------------- staleness


def test_stale_fires_from_the_clock_alone_and_resolves_on_good_data() -> None:
    run = Run({"id": "silent", "kind": "stale", "metric": "temp_c", "after_s": 600})
    run.feed("temp_c", [(0, 22.0)])
    assert run.step(600) == []  # exactly after_s: not yet
    (ev,) = run.step(601)
    assert (ev.kind, ev.dedup_key, ev.started_at, ev.limit) == (
        "firing",
        "silent:tpe1:room-a:env-1:temp_c",
        at(600),
        600,
    )
    assert ev.messages["en"] == "env-1 temp_c: no good data for over 10 min"
    assert run.step(700) == []  # fires once
    assert run.step(800, [smp("temp_c", None, 800, q=Quality.COMM_ERROR)]) == []  # bad data does not help
    (ev,) = run.step(900, [smp("temp_c", 22.5, 900)])
    assert (ev.kind, ev.at) == ("resolved", at(900))


def test_stale_counts_from_the_first_reading_when_none_was_ever_good() -> None:
    run = Run({"id": "silent", "kind": "stale", "metric": "temp_c", "after_s": 60})
    run.step(0, [smp("temp_c", None, 0, q=Quality.UNAVAILABLE)])
    assert [e.kind for e in run.step(61)] == ["firing"]


def test_device_stale_needs_any_good_metric() -> None:
    run = Run({"id": "mute", "kind": "stale", "after_s": 300, "scope": {"classes": ["env"]}})
    run.step(0, [smp("temp_c", 22.0, 0), smp("rh_pct", 45.0, 0), smp("temp_c", 22.0, 0, UPS)])
    run.step(200, [smp("temp_c", None, 200, q=Quality.COMM_ERROR), smp("rh_pct", 44.0, 200)])
    assert run.step(450) == []  # rh_pct was good at 200
    (ev,) = run.step(501)
    assert ev.dedup_key == "mute:tpe1:room-a:env-1"  # one alert per device, the UPS is out of scope
    assert ev.labels["device"] == "env-1"
    assert "metric" not in ev.labels
    (ev,) = run.step(600, [smp("rh_pct", 44.0, 590)])
    assert ev.kind == "resolved"


# ----------------------------------------------------------------------------------------- rate


def test_rate_rise_within_the_window() -> None:
    run = Run({"id": "heating", "kind": "rate", "metric": "temp_c", "change": 5, "window_s": 900})
    assert run.feed("temp_c", [(0, 20.0), (300, 22.0), (600, 24.9)]) == []
    (ev,) = run.feed("temp_c", [(700, 25.5)])
    assert (ev.kind, ev.value, ev.limit, ev.params["delta"]) == ("firing", 5.5, 5.0, "5.5")
    assert ev.messages["en"] == "env-1 temp_c changed 5.5 °C within 15 min (limit 5 °C)"
    # A plateau: once the 20 °C reading leaves the window the change is under 5 °C again.
    assert run.feed("temp_c", [(800, 25.5)]) == []
    assert [e.kind for e in run.feed("temp_c", [(1000, 25.5)])] == ["resolved"]


def test_rate_fall_and_any() -> None:
    fall = Run(
        {
            "id": "drop",
            "kind": "rate",
            "metric": "input_voltage_v",
            "op": "fall",
            "change": 20,
            "window_s": 60,
        }
    )
    assert [e.kind for e in fall.feed("input_voltage_v", [(0, 230.0), (30, 205.0)], UPS)] == ["firing"]
    anyway = Run(
        {"id": "swing", "kind": "rate", "metric": "temp_c", "op": "any", "change": 3, "window_s": 300}
    )
    (ev,) = anyway.feed("temp_c", [(0, 24.0), (60, 20.5)])
    assert ev.value == -3.5


# ---------------------------------------------------------------------------------------- match


def test_match_bool() -> None:
    run = Run(
        {"id": "on-battery", "kind": "match", "metric": "on_battery", "equals": True, "severity": "critical"}
    )
    assert run.feed("on_battery", [(0, False)], UPS) == []
    (ev,) = run.feed("on_battery", [(10, True)], UPS)
    assert (ev.kind, ev.severity, ev.value) == ("firing", "critical", True)
    assert ev.messages["en"] == "ups-1 on_battery = true"
    assert run.feed("on_battery", [(20, True)], UPS) == []
    assert [e.kind for e in run.feed("on_battery", [(30, False)], UPS)] == ["resolved"]


def test_match_not_in_states_generator_not_in_auto() -> None:
    run = Run(
        {
            "id": "gen-not-auto",
            "kind": "match",
            "metric": "control_mode",
            "not_states": ["auto"],
            "hold_for_s": 60,
        }
    )
    assert run.feed("control_mode", [(0, "auto"), (10, "manual"), (60, "manual")], GEN) == []
    (ev,) = run.feed("control_mode", [(70, "manual")], GEN)
    assert (ev.value, ev.params["expected"]) == ("manual", "not auto")


def test_match_glob_tracks_each_alarm_separately() -> None:
    run = Run({"id": "gen-alarm", "kind": "match", "metric": "alarm_*", "states": ["shutdown", "warning"]})
    out = run.step(
        0,
        [
            Sample(GEN, "alarm_low_oil_pressure", at(0), "shutdown"),
            Sample(GEN, "alarm_high_coolant_temp", at(0), "not_active"),
            Sample(GEN, "alarm_count", at(0), 12),
            Sample(GEN, "alarm_fuel_level", at(0), "warning"),
        ],
    )
    assert sorted(kinds(out)) == [
        ("firing", "gen-alarm:tpe1:room-a:gen-1:alarm_fuel_level"),
        ("firing", "gen-alarm:tpe1:room-a:gen-1:alarm_low_oil_pressure"),
    ]
    out = run.step(10, [Sample(GEN, "alarm_fuel_level", at(10), "not_active")])
    assert kinds(out) == [("resolved", "gen-alarm:tpe1:room-a:gen-1:alarm_fuel_level")]


# --------------------------------------------------------------------------------------- dewpoint


def test_dewpoint_from_temperature_and_humidity_of_one_poll() -> None:
    run = Run({"id": "condensation", "kind": "dewpoint", "op": "above", "value": 15, "clear": 14})
    # 25 °C / 60 % → 16.7 °C dew point, but only when both come from the same poll.
    assert run.step(0, [smp("temp_c", 25.0, 0)]) == []
    assert run.step(5, [smp("rh_pct", 60.0, 5)]) == []
    (ev,) = run.step(60, [smp("temp_c", 25.0, 60), smp("rh_pct", 60.0, 60)])
    assert ev.dedup_key == "condensation:tpe1:room-a:env-1:dew_point_c"
    assert isinstance(ev.value, float)
    assert round(ev.value, 1) == 16.7
    assert (ev.params["temp"], ev.params["rh"], ev.params["unit"]) == ("25", "60", "°C")
    # A bad RH in the next poll is no-data, not a dry room.
    assert run.step(120, [smp("temp_c", 25.0, 120), smp("rh_pct", None, 120, q=Quality.COMM_ERROR)]) == []
    # 25 °C / 50 % → 13.9 °C: at or below clear.
    (ev,) = run.step(180, [smp("rh_pct", 50.0, 180), smp("temp_c", 25.0, 180)])
    assert ev.kind == "resolved"


# ------------------------------------------------------------------------------------------ group

CRAC_N1 = {
    "id": "crac-n1",
    "kind": "group",
    "severity": "critical",
    "scope": {"classes": ["crac"]},
    "healthy_when": {"metric": "unit_state", "states": ["on"]},
    "min_healthy": 3,
    "member_stale_s": 120,
}
CRACS = [Labels("tpe1", "room-a", f"crac-{i}", DeviceClass.CRAC) for i in (1, 2, 3)]


def crac_states(s: float, *states: str) -> list[Input]:
    return [Sample(lb, "unit_state", at(s), state) for lb, state in zip(CRACS, states, strict=True)]


def test_group_redundancy_lost_and_recovered() -> None:
    run = Run(CRAC_N1)
    assert run.step(0, crac_states(0, "on", "on", "on")) == []
    (ev,) = run.step(60, crac_states(60, "on", "off", "on"))
    assert (ev.kind, ev.dedup_key, ev.value, ev.limit) == ("firing", "crac-n1:tpe1:room-a", 2, 3.0)
    assert ev.labels == {"site": "tpe1", "room": "room-a", "metric": "unit_state", "class": "crac"}
    assert (ev.params["healthy"], ev.params["total"], ev.params["unhealthy"]) == ("2", "3", "crac-2")
    assert ev.messages["en"] == "room-a crac: 2 of 3 healthy, fewer than 3 (crac-2)"
    assert run.step(90, crac_states(90, "on", "standby", "on")) == []
    (ev,) = run.step(120, crac_states(120, "on", "on", "on"))
    assert ev.kind == "resolved"


def test_group_member_that_goes_silent_or_offline_is_unhealthy() -> None:
    run = Run(CRAC_N1)
    run.step(0, crac_states(0, "on", "on", "on"))
    run.step(100, crac_states(100, "on", "on", "on")[:2])  # crac-3 says nothing more
    assert run.step(120) == []
    (ev,) = run.step(121)
    assert ev.params["unhealthy"] == "crac-3"
    run.step(130, crac_states(130, "on", "on", "on"))
    assert [e.kind for e in run.events] == ["firing", "resolved"]
    (ev,) = run.step(140, [StatusInput(CRACS[0], at(140), "offline", "timeout")])
    assert (ev.kind, ev.params["unhealthy"]) == ("firing", "crac-1")


def test_groups_are_per_room_by_default() -> None:
    other = [Labels("tpe1", "room-b", f"crac-b{i}", DeviceClass.CRAC) for i in (1, 2, 3)]
    run = Run({**CRAC_N1, "min_healthy": 2})
    out = run.step(
        0,
        [*crac_states(0, "on", "on", "off"), *(Sample(lb, "unit_state", at(0), "off") for lb in other)],
    )
    assert kinds(out) == [("firing", "crac-n1:tpe1:room-b")]


def test_group_with_hold_for() -> None:
    run = Run({**CRAC_N1, "hold_for_s": 60})
    run.step(0, crac_states(0, "on", "off", "on"))
    assert run.step(59, crac_states(59, "on", "off", "on")) == []
    (ev,) = run.step(60)
    assert (ev.kind, ev.started_at, ev.params["healthy"]) == ("firing", at(0), "2")


# ------------------------------------------------------------------------------------------ events

FORCED = {"id": "forced", "kind": "event", "event": "door", "names": ["forced_open"], "resolve_after_s": 300}


def door(name: str, s: float, lb: Labels = DOOR) -> EventInput:
    return EventInput(lb, at(s), "door", name)


def test_event_fires_once_and_resolves_after_its_time() -> None:
    run = Run(FORCED)
    (ev,) = run.step(0, [door("forced_open", 0)])
    assert (ev.kind, ev.dedup_key, ev.value) == ("firing", "forced:tpe1:room-a:door-1", "forced_open")
    assert ev.messages["zh_TW"] == "door-1（room-a）事件：forced_open"
    assert run.step(0, [door("forced_open", 0)]) == []  # redelivery
    assert run.step(200, [door("forced_open", 200)]) == []  # a repeat extends, no second firing
    assert run.step(499) == []
    (ev,) = run.step(500)
    assert (ev.kind, ev.at, ev.started_at) == ("resolved", at(500), at(0))


def test_event_resolved_by_a_named_event() -> None:
    run = Run(
        {
            **FORCED,
            "names": ["forced_open", "held_open"],
            "resolve_names": ["closed"],
            "resolve_after_s": None,
        }
    )
    run.step(0, [door("held_open", 0)])
    assert run.step(10_000) == []  # no timeout: stays until the door closes (or the lifecycle acks)
    assert run.step(10_001, [door("open", 10_001)]) == []
    (ev,) = run.step(10_002, [door("closed", 10_002)])
    assert ev.kind == "resolved"


def test_trap_event_with_power_chain_margin_from_wire() -> None:
    run = Run(
        {
            "id": "ups-trap",
            "kind": "event",
            "event": "trap",
            "names": ["upsTrapOnBattery"],
            "power_chain": {"transfer_s": 30},
        }
    )
    run.step(0, [Sample(UPS, "runtime_s", at(0), 840.0), Sample(GEN, "control_mode", at(0), "auto")])
    run.step(0, [Sample(GEN, "engine_state", at(0), "stopped"), Sample(GEN, "gen_power_w", at(0), 0.0)])
    wire = WireEvent(
        at(5), "tpe1", "trap", "upsTrapOnBattery", room="room-a", device="ups-1", source="10.0.0.5"
    )
    (ev,) = run.step(5, [event_from_wire(wire, UPS)])
    assert ev.params["source"] == "10.0.0.5"
    assert (
        ev.localized["en"]["margin"] == "runtime 14 min vs generator start-and-transfer 30 s: margin 13.5 min"
    )
    assert ev.messages["zh_TW"] == (
        "ups-1（room-a）事件：upsTrapOnBattery；電池剩餘 14 分鐘，發電機約 0.5 分鐘內接手，餘裕 13.5 分鐘"
    )


# -------------------------------------------------------------------------------------- power chain

LOW_RUNTIME = {
    "id": "low-runtime",
    "kind": "threshold",
    "scope": {"classes": ["ups"]},
    "metric": "runtime_s",
    "op": "below",
    "value": 1200,
    "clear": 1500,
    "power_chain": {"transfer_s": 30},
    "messages": {"zh_TW": "{device} {margin}", "en": "{device}: {margin}"},
}


def test_ups_alert_carries_the_power_chain_margin() -> None:
    run = Run(LOW_RUNTIME)
    gen = [
        Sample(GEN, "control_mode", at(0), "auto"),
        Sample(GEN, "engine_state", at(0), "running"),
        Sample(GEN, "gen_power_w", at(0), 0.0),
    ]
    (ev,) = run.step(10, [*gen, Sample(UPS, "runtime_s", at(10), 840.0)])
    assert ev.messages["en"] == "ups-1: runtime 14 min vs generator start-and-transfer 30 s: margin 13.5 min"
    run.step(20, [Sample(UPS, "runtime_s", at(20), 1600.0)])
    # The generator now carries the load.
    (ev,) = run.step(
        30,
        [
            Sample(GEN, "engine_state", at(30), "running"),
            Sample(GEN, "gen_power_w", at(30), 38_000.0),
            Sample(UPS, "runtime_s", at(30), 900.0),
        ],
    )
    assert ev.messages["en"] == "ups-1: runtime 15 min; generator gen-1 is carrying the load"


def test_power_chain_finds_the_generator_in_its_own_room() -> None:
    """A generator stands in a generator room, not among the racks: the site's genset is used."""
    gen_room = Labels("tpe1", "gen-room", "gen-1", DeviceClass.GENSET)
    run = Run(LOW_RUNTIME)
    gen = [
        Sample(gen_room, "control_mode", at(0), "auto"),
        Sample(gen_room, "engine_state", at(0), "stopped"),
    ]
    (ev,) = run.step(10, [*gen, Sample(UPS, "runtime_s", at(10), 840.0)])
    assert "no generator reading" not in ev.messages["en"]
    assert ev.messages["en"] == "ups-1: runtime 14 min vs generator start-and-transfer 30 s: margin 13.5 min"


def test_power_chain_treats_old_generator_readings_as_unknown() -> None:
    run = Run(LOW_RUNTIME)
    run.step(0, [Sample(GEN, "control_mode", at(0), "manual"), Sample(GEN, "engine_state", at(0), "stopped")])
    (ev,) = run.step(1000, [Sample(UPS, "runtime_s", at(1000), 600.0)])  # fresh_s 300: the genset is unknown
    assert ev.messages["en"] == "ups-1: runtime 10 min; no generator reading (start-and-transfer 30 s)"
    run.step(1010, [Sample(UPS, "runtime_s", at(1010), 1600.0)])
    run.step(
        1020,
        [Sample(GEN, "control_mode", at(1020), "manual"), Sample(GEN, "engine_state", at(1020), "stopped")],
    )
    (ev,) = run.step(1030, [Sample(UPS, "runtime_s", at(1030), 600.0)])
    assert ev.messages["zh_TW"] == "ups-1 電池剩餘 10 分鐘；發電機不在自動模式（manual），不會自行啟動"


# ----------------------------------------------------------------------------------------- offline


def test_offline_with_hold_for_fires_on_the_clock() -> None:
    run = Run({"id": "offline", "kind": "offline", "hold_for_s": 60, "scope": {"classes": ["ups"]}})
    assert run.step(0, [StatusInput(UPS, at(0), "offline", "timeout after 2 s")]) == []
    assert run.step(59) == []
    (ev,) = run.step(60)
    assert (ev.kind, ev.dedup_key, ev.started_at) == ("firing", "offline:tpe1:room-a:ups-1", at(0))
    assert ev.messages["en"] == "ups-1 (room-a) offline: timeout after 2 s"
    assert run.step(61, [StatusInput(UPS, at(0), "online")]) == []  # not newer than the offline report
    (ev,) = run.step(90, [StatusInput(UPS, at(90), "online")])
    assert ev.kind == "resolved"
    # A short blip inside hold_for never fires.
    assert run.step(200, [StatusInput(UPS, at(150), "offline"), StatusInput(UPS, at(180), "online")]) == []


def test_collector_offline_is_its_own_target() -> None:
    run = Run(
        {"id": "collector-down", "kind": "offline", "target": "collector"},
        {"id": "device-down", "kind": "offline"},
    )
    status = DeviceStatus("offline", at(0), "collector connection lost (last will)")
    (ev,) = run.step(0, [collector_status_from_wire("tpe1", "col-1", status)])
    assert (ev.rule_id, ev.dedup_key) == ("collector-down", "collector-down:tpe1:_collector:col-1")
    assert ev.labels["class"] == "system"


# -------------------------------------------------------------------------------------------- scope


def test_scope_selectors_pick_the_devices() -> None:
    run = Run(
        {**HOT, "id": "hot-a", "scope": {"rooms": ["room-a"]}},
        {**HOT, "id": "hot-cold2", "scope": {"zones": ["cold-2"]}},
        {**HOT, "id": "hot-r01", "scope": {"racks": ["r01"], "classes": ["env"]}},
        {**HOT, "id": "hot-ops", "scope": {"tags": {"owner": "ops"}, "site": "tpe1"}},
        {**HOT, "id": "hot-env9", "scope": {"devices": ["env-9"]}},
        {**HOT, "id": "hot-ups", "scope": {"classes": ["ups"]}},
    )
    out = run.step(0, [smp("temp_c", 30.0, 0, ENV), smp("temp_c", 30.0, 0, ENV2)])
    assert sorted((e.rule_id, e.labels["device"]) for e in out) == [
        ("hot-a", "env-1"),
        ("hot-cold2", "env-2"),
        ("hot-ops", "env-2"),
        ("hot-r01", "env-1"),
    ]


# ------------------------------------------------------------------------------- state and purity


def test_state_json_round_trip_then_continuing_gives_no_duplicate_firing() -> None:
    rules = (
        {**HOT, "hold_for_s": 120},
        {"id": "heating", "kind": "rate", "metric": "temp_c", "change": 3, "window_s": 600},
        {"id": "silent", "kind": "stale", "metric": "rh_pct", "after_s": 300},
        CRAC_N1,
        FORCED,
        {"id": "offline", "kind": "offline", "hold_for_s": 600},
    )
    run = Run(*rules)
    run.step(0, [smp("temp_c", 24.0, 0), smp("rh_pct", 40.0, 0), *crac_states(0, "on", "off", "on")])
    run.step(60, [smp("temp_c", 28.0, 60), door("forced_open", 60), StatusInput(UPS, at(60), "offline", "x")])
    run.step(200, [smp("temp_c", 28.5, 200)])
    assert run.state is not None
    assert [(k.split(":")[0], phase) for k, phase, _s in run.state.open_alerts()] == [
        ("crac-n1", "firing"),
        ("forced", "firing"),
        ("heating", "firing"),
        ("hot", "firing"),
        ("offline", "pending"),
    ]

    doc = json.loads(json.dumps(run.state.to_json()))
    restored = EngineState.from_json(doc)
    assert restored == run.state

    # "Restart": a new process continues from the restored state; the old one continues as if nothing
    # happened. Both see the same later inputs, including replays of what the old one had seen.
    again = Run(*rules)
    again.state = restored
    later: list[tuple[float, list[Input]]] = [
        (300, [smp("temp_c", 28.5, 300), smp("rh_pct", 41.0, 300), *crac_states(300, "on", "off", "on")]),
        (310, [smp("temp_c", 20.0, 200), door("forced_open", 60), StatusInput(UPS, at(60), "offline", "x")]),
        (700, []),
    ]
    for now, inputs in later:
        assert again.step(now, inputs) == run.step(now, inputs)
    after = [(e.kind, e.rule_id) for e in again.events]
    assert sorted(after) == [("firing", "offline"), ("firing", "silent"), ("resolved", "forced")]
    # Nothing fired twice across the restart.
    keys = [e.dedup_key for e in run.events if e.kind == "firing"]
    assert len(keys) == len(set(keys))


def test_state_from_json_refuses_another_version() -> None:
    with pytest.raises(ValueError, match="version 99"):
        EngineState.from_json({"version": 99})
    with pytest.raises(ValueError, match="malformed"):
        EngineState.from_json({"version": 1, "labels": [{"site": "x"}]})


def test_evaluate_leaves_the_given_state_alone() -> None:
    idx = index(HOT)
    s1, _ = evaluate(idx, None, [smp("temp_c", 22.0, 0)], at(0))
    snapshot = s1.to_json()
    s2a, ev_a = evaluate(idx, s1, [smp("temp_c", 30.0, 60)], at(60))
    s2b, ev_b = evaluate(idx, s1, [smp("temp_c", 30.0, 60)], at(60))
    assert s1.to_json() == snapshot
    assert s2a == s2b
    assert ev_a == ev_b
    assert len(ev_a) == 1


def test_trackers_of_removed_rules_are_dropped() -> None:
    s1, _ = evaluate(index(HOT), None, [smp("temp_c", 30.0, 0)], at(0))
    assert s1.trackers
    s2, out = evaluate(index({**HOT, "id": "hot2"}), s1, [], at(10))
    assert out == []
    assert s2.trackers == {}


def test_evaluate_accepts_a_rule_list() -> None:
    rs = RuleSet.model_validate({"rules": [HOT]})
    _, out = evaluate(rs.rules, None, [smp("temp_c", 30.0, 0)], at(0))
    assert kinds(out) == [("firing", "hot:tpe1:room-a:env-1:temp_c")]


def test_inhibits_helper() -> None:
    rs = RuleSet.model_validate(
        {"rules": [{"id": "room-offline", "kind": "offline", "inhibits": ["hot"]}, HOT]}
    )
    run = Run({"id": "room-offline", "kind": "offline", "inhibits": ["hot"]}, HOT)
    (src,) = run.step(0, [StatusInput(ENV, at(0), "offline")])
    (same_room,) = run.step(1, [smp("temp_c", 30.0, 1)])
    (other_room,) = run.step(2, [smp("temp_c", 30.0, 2, ENV2)])
    assert inhibits(rs.rules[0], src, same_room)
    assert not inhibits(rs.rules[0], src, other_room)
    assert not inhibits(rs.rules[1], same_room, src)


# ------------------------------------------------------------------------------------------ inputs


def test_samples_from_poll_flatten_one_poll() -> None:
    ref = DeviceRef(
        "tpe1", "room-a", "env-1", DeviceClass.ENV, "sht20", {"zone": "cold-1", "rack": "r01", "x": "y"}
    )
    poll = PollResult(
        ref,
        at(0),
        (Metric("temp_c", 22.5), Metric("rh_pct", None, Quality.UNAVAILABLE)),
        quality=Quality.PARTIAL,
    )
    samples = samples_from_poll(poll)
    assert [(s.metric, s.value, s.quality, s.ts) for s in samples] == [
        ("temp_c", 22.5, Quality.GOOD, at(0)),
        ("rh_pct", None, Quality.UNAVAILABLE, at(0)),
    ]
    lb = labels_from_ref(ref)
    assert (lb.zone, lb.rack, lb.tags) == ("cold-1", "r01", (("x", "y"),))
    assert samples[0].labels is samples[1].labels
    assert samples[0].series == ("tpe1", "room-a", "env-1", "temp_c")


# ------------------------------------------------------------------------------------------ property


@st.composite
def crossing_signal(draw: st.DrawFn) -> tuple[list[tuple[float, float]], list[list[int]], bool]:
    """A signal that rises once through the limit (27) and later falls through clear (26), or not."""
    ups = draw(st.lists(st.floats(18.0, 35.0), min_size=1, max_size=15))
    peak = draw(st.floats(27.001, 40.0))
    downs = draw(st.lists(st.floats(15.0, 40.0), max_size=15))
    values = [*sorted(ups), peak, *sorted((d for d in downs if d <= peak), reverse=True)]
    gaps = draw(st.lists(st.floats(0.001, 600.0), min_size=len(values), max_size=len(values)))
    t, points = 0.0, []
    for g, v in zip(gaps, values, strict=True):
        t += g
        points.append((t, v))
    # Calls: each is a batch of sample indices; batches may repeat earlier samples (replays, duplicates).
    calls: list[list[int]] = []
    i = 0
    while i < len(points):
        n = draw(st.integers(1, 4))
        batch = list(range(i, min(i + n, len(points))))
        i += n
        replays = draw(st.lists(st.integers(0, max(batch)), max_size=3))
        calls.append(batch + replays)
    return points, calls, min(v for _t, v in points[values.index(peak) :]) <= 26.0


@settings(max_examples=300, deadline=None)
@given(crossing_signal())
def test_property_one_crossing_fires_once_and_resolves_at_most_once(case) -> None:
    points, calls, goes_below_clear = case
    run = Run(HOT)
    for batch in calls:
        now = max(points[i][0] for i in batch)
        run.step(now, [smp("temp_c", points[i][1], points[i][0]) for i in batch])
    fired = [e for e in run.events if e.kind == "firing"]
    resolved = [e for e in run.events if e.kind == "resolved"]
    assert len(fired) == 1
    assert len(resolved) == (1 if goes_below_clear else 0)
    if resolved:
        assert resolved[0].at >= fired[0].at
