# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The pure compliance detectors: generator runs, UPS self-tests and incident reviews from alerts.

Samples are built by small helpers with injected times (no clock, no sleeps, no bus). The genset
sequences follow the simulated DSE controller: stopped → pre_start → warming_up → running → cooling_down
(60 s) → stopped, control_mode test_on_load for a test and auto at rest, during the cool-down and during a
mains-failure run, and auto for one second after a test while the set still carries the load.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance.facts import Value
from compliance.generator_runs import GensetSample, RunDetector, detect_runs, sample_from_metrics
from compliance.incidents import AlertPayload, alert_info, incident_from_alert, parse_alert
from compliance.kinds import GeneratorTest, Incident, UpsTest
from compliance.ups_tests import FIRST_READ_NOTE, UpsSample, UpsTestDetector, detect_ups_tests
from devices.sim.physics import DeviceDecl, RoomModel
from siteconfig.compliance_config import GeneratorTests, Incidents

T0 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
RULES = GeneratorTests()  # ≥ 30 % for ≥ 30 min (NFPA 110 §8.4.2)


# --- generator runs -----------------------------------------------------------------------------------


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def gs(
    t: float,
    mode: str | None = "test_on_load",
    engine: str | None = "running",
    load: float | None = 40.0,
    mains: bool | None = False,
    device: str = "gen1",
) -> GensetSample:
    return GensetSample(at(t), device, mode, engine, load, mains)


def every(start: float, dur: float, step: float) -> list[float]:
    """start, start+step, ... and exactly start+dur last: the observed span is `dur`."""
    out = [start + k * step for k in range(int(dur // step) + 1)]
    if out[-1] != start + dur:
        out.append(start + dur)
    return out


def cool_down(t: float, step: float = 5.0, device: str = "gen1") -> list[GensetSample]:
    """60 s of cool-down in auto from t, then stopped."""
    cool = [gs(t + k * step, "auto", "cooling_down", 0.0, device=device) for k in range(int(60 // step) + 1)]
    return [*cool, gs(t + 60 + step, "auto", "stopped", 0.0, device=device)]


def sampled_test(
    on_load_s: float,
    load: float,
    *,
    step: float = 5.0,
    start: float = 0.0,
    mode: str = "test_on_load",
    device: str = "gen1",
) -> list[GensetSample]:
    """A test on load as the controller shows it: on load from `start` for exactly `on_load_s`."""

    def g(t: float, m: str | None, engine: str, ld: float) -> GensetSample:
        return gs(start + t, m, engine, ld, device=device)

    out = [
        g(-20, "auto", "stopped", 0.0),
        g(-15, mode, "pre_start", 0.0),
        g(-10, mode, "warming_up", 0.0),
        g(-5, mode, "running", 0.0),  # running, the load not yet transferred
    ]
    out += [g(t, mode, "running", load) for t in every(0, on_load_s, step)]
    out.append(g(on_load_s + 1, "auto", "running", load))  # test over: auto, still loaded for a second
    return out + cool_down(start + on_load_s + step, step, device)


def feed_all(samples: Iterable[GensetSample], det: RunDetector | None = None) -> list[GeneratorTest]:
    det = det or RunDetector(RULES)
    out: list[GeneratorTest] = []
    for s in samples:
        out.extend(det.feed(s))
    return out


def test_a_32_min_test_at_40_pct_counts_as_test_mode_without_its_cool_down() -> None:
    samples = sampled_test(32 * 60, 40.0)
    det = RunDetector(RULES)
    finished_at = None
    recs: list[GeneratorTest] = []
    for s in samples:
        got = det.feed(s)
        if got:
            finished_at = s
        recs.extend(got)
    [r] = recs
    assert r.trigger == "test_mode"
    assert r.counts is True
    # exactly 32.0: the auto sample a second after the test and the cool-down add nothing
    assert r.on_load_minutes == 32.0
    assert (r.min_load_pct, r.avg_load_pct) == (40.0, 40.0)
    assert r.started_at == at(-5)
    assert r.ended_at == at(32 * 60 + 1)  # the last sample seen running
    assert finished_at is not None
    assert finished_at.engine_state == "cooling_down"
    assert r.ended_at < finished_at.ts
    assert r.source == "telemetry"
    assert (
        r.reason
        == "32.0 min at ≥ 30 % (avg 40.0 %): counts / 帶載 32.0 分鐘（≥ 30 %，平均 40.0 %）：計入月測"
    )
    assert r.ref() == "gen1@2026-11-03T01:59:55Z"
    assert det.open_runs() == {}


def test_a_20_minute_run_does_not_count() -> None:
    [r] = feed_all(sampled_test(20 * 60, 40.0))
    assert r.counts is False
    assert r.on_load_minutes == 20.0
    assert r.trigger == "test_mode"
    assert (
        r.reason
        == "only 20.0 min on load at ≥ 30 % (needs 30) / 帶載（≥ 30 %）僅 20.0 分鐘，未達 30 分鐘，不計入"
    )


def test_a_35_minute_run_at_20_pct_does_not_count_for_its_load() -> None:
    [r] = feed_all(sampled_test(35 * 60, 20.0))
    assert r.counts is False
    assert r.on_load_minutes == 0.0
    assert r.reason == "load 20 % below 30 % / 負載 20 % 低於 30 %，不計入"
    # no stretch on load: min/avg over the whole run (the first running sample carried nothing yet)
    assert r.min_load_pct == 0.0
    assert r.avg_load_pct == pytest.approx(20.0, abs=0.1)


@pytest.mark.parametrize(
    ("on_load_s", "load", "counts", "minutes"),
    [
        (1800.0, 30.0, True, 30.0),  # exactly 30.0 min at exactly 30 %: counts
        (1794.0, 30.0, False, 29.9),
        (1799.9, 30.0, False, 29.998),  # shown as 29.9, never rounded up to the threshold
        (1800.0, 29.9, False, 0.0),
    ],
)
def test_the_30_pct_30_min_boundary(on_load_s: float, load: float, counts: bool, minutes: float) -> None:
    [r] = feed_all(sampled_test(on_load_s, load))
    assert r.counts is counts
    assert r.on_load_minutes == minutes
    if minutes and not counts:
        assert r.reason is not None
        assert r.reason.startswith(f"only {int(minutes * 10) / 10:.1f} min on load")


def mains_run(alarm: str, *, clear_before_running: bool = False) -> list[GensetSample]:
    """Mains lost with the set in auto: the alarm raises, the set starts, carries the building for 10 min,
    mains returns (the alarm clears) while the set carries the load 10 s more, then cools down."""

    def m(t: float, engine: str, load: float, failed: bool) -> GensetSample:
        metrics: dict[str, Value] = {
            "control_mode": "auto",
            "engine_state": engine,
            "gen_load_pct": load,
            "alarm_mains_failed": alarm if failed else "inactive_indication",
            "alarm_mains_failed_to_close": "not_active",
        }
        return sample_from_metrics(at(t), "gen1", metrics)

    out = [m(-30, "stopped", 0.0, False), m(-25, "stopped", 0.0, True), m(-20, "pre_start", 0.0, True)]
    out.append(m(-15, "warming_up", 0.0, not clear_before_running))
    out.append(m(-10, "running", 0.0, not clear_before_running))
    out += [m(t, "running", 75.0, not clear_before_running) for t in every(-5, 600, 5)]
    out += [m(t, "running", 75.0, False) for t in (600, 605, 610)]  # mains back, retransfer delay
    out.append(m(615, "running", 0.0, False))  # the ATS gave the load back to mains
    out += [m(t, "cooling_down", 0.0, False) for t in every(620, 60, 5)]
    return [*out, m(685, "stopped", 0.0, False)]


@pytest.mark.parametrize("alarm", ["active_indication", "warning"])
def test_a_mains_failure_run_is_decided_at_its_start(alarm: str) -> None:
    [r] = feed_all(mains_run(alarm))
    assert r.trigger == "mains_failure"  # although the alarm had cleared before the run ended
    assert r.started_at == at(-10)
    assert r.ended_at == at(615)
    assert r.counts is False
    assert r.on_load_minutes == pytest.approx(615 / 60, abs=0.001)


def test_mains_that_returns_during_the_start_still_makes_a_mains_failure_run() -> None:
    [r] = feed_all(mains_run("active_indication", clear_before_running=True))
    assert r.trigger == "mains_failure"


@pytest.mark.parametrize(
    ("mode", "trigger"),
    [("manual", "manual"), ("auto", "unknown"), (None, "unknown"), ("test_off_load", "test_mode")],
)
def test_the_other_triggers(mode: str | None, trigger: str) -> None:
    samples = [gs(0, mode, "stopped", 0.0)]
    samples += [gs(t, mode, "running", 50.0) for t in every(5, 600, 5)]
    [r] = feed_all([*samples, *cool_down(610)])
    assert r.trigger == trigger
    if mode == "test_off_load":
        # a test run counts only while in test_on_load
        assert r.counts is False
        assert r.on_load_minutes == 0.0
        assert (
            r.reason
            == "never at ≥ 30 % while in test_on_load / 測試模式（test_on_load）下負載未達 30 %，不計入"
        )
    else:
        assert r.on_load_minutes == 10.0


def gap_run(gap_s: float) -> list[GensetSample]:
    """A test on load for 40 min whose readings stop for `gap_s` after 20 min."""
    samples = sampled_test(40 * 60, 40.0)
    return [s for s in samples if not at(20 * 60) < s.ts < at(20 * 60 + gap_s)]


def test_a_2_minute_gap_ends_the_run_and_restarts_the_on_load_span() -> None:
    recs = feed_all(gap_run(120))
    assert [r.counts for r in recs] == [False, False]
    first, second = recs
    assert first.ended_at == at(20 * 60)
    assert first.on_load_minutes == 20.0
    assert first.notes is not None
    assert "no reading for over 60 s" in first.notes
    assert second.started_at == at(20 * 60 + 120)
    assert second.trigger == "test_mode"  # kept from the run the gap interrupted
    assert second.on_load_minutes == 18.0
    assert second.notes is not None
    assert "continues the run of gen1@2026-11-03T01:59:55Z" in second.notes


def test_the_gap_gives_the_same_records_whether_flush_or_the_next_sample_notices_it() -> None:
    samples = gap_run(120)
    det = RunDetector(RULES)
    live: list[GeneratorTest] = []
    for s in samples:
        if s.ts == at(20 * 60 + 120):
            assert det.flush(at(20 * 60 + 30)) == []  # not silent long enough yet
            live.extend(det.flush(at(20 * 60 + 90)))
            assert len(live) == 1
        live.extend(det.feed(s))
    assert live == feed_all(samples)


def test_a_gap_within_max_gap_keeps_the_span() -> None:
    [r] = feed_all(gap_run(45))
    assert r.counts is True
    assert r.on_load_minutes == 40.0


def test_state_round_trips_through_json_mid_run() -> None:
    samples = sampled_test(32 * 60, 40.0) + no_engine_state_run(start=4000)
    whole = feed_all(samples)
    for cut in (3, 4, 5, 200, 389, 390, 400, len(samples) - 20, len(samples) - 8):
        det = RunDetector(RULES)
        recs = feed_all(samples[:cut], det)
        state = json.loads(json.dumps(det.to_json(), ensure_ascii=False))
        recs += feed_all(samples[cut:], RunDetector.from_json(RULES, state))
        assert recs == whole, cut


def test_a_state_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        RunDetector.from_json(RULES, {"v": 99, "devices": {}})


def test_detect_runs_gives_the_same_records_as_feeding_live() -> None:
    samples = (
        sampled_test(32 * 60, 40.0)
        + sampled_test(20 * 60, 40.0, start=3600)
        + sampled_test(35 * 60, 20.0, start=7200, device="gen2")
        + sampled_test(31 * 60, 45.0, start=7300)
    )
    samples.sort(key=lambda s: s.ts)
    live = feed_all(samples)
    assert len(live) == 4
    shuffled = list(samples)
    random.Random(7).shuffle(shuffled)
    history = detect_runs(shuffled, RULES)
    assert history == sorted(
        (r.model_copy(update={"source": "history"}) for r in live), key=lambda r: (r.started_at, r.device)
    )
    assert {r.source for r in history} == {"history"}


def test_detect_runs_leaves_out_a_run_still_going_unless_now_says_it_went_silent() -> None:
    samples = sampled_test(32 * 60, 40.0)[:100]
    assert detect_runs(samples, RULES) == []
    assert detect_runs(samples, RULES, now=samples[-1].ts + timedelta(seconds=30)) == []
    [r] = detect_runs(samples, RULES, now=samples[-1].ts + timedelta(seconds=61))
    assert r.ended_at == samples[-1].ts


def no_engine_state_run(start: float = 0.0) -> list[GensetSample]:
    """A controller that reports no engine state: 35 min at 50 % with a 10 s transfer break at 0 %."""
    out = [gs(start + t, "auto", None, 0.0) for t in (0, 5)]
    out += [gs(start + t, "auto", None, 50.0) for t in every(10, 600, 5)]
    out += [gs(start + t, "auto", None, 0.0) for t in (615, 620)]  # transfer break: not the end
    out += [gs(start + t, "auto", None, 50.0) for t in every(625, 35 * 60, 5)]
    return out + [gs(start + t, "auto", None, 0.0) for t in every(2730, 120, 5)]  # unloaded, stopping


def test_without_engine_state_the_load_decides_and_a_minute_at_zero_ends_the_run() -> None:
    samples = no_engine_state_run()
    [r] = feed_all(samples)
    assert r.started_at == at(10)
    assert r.ended_at == at(2725)  # the last sample on load
    assert r.on_load_minutes == 35.0  # the span after the transfer break
    assert r.counts is True
    assert r.trigger == "unknown"
    # the same record when the clock, not a sample, ends the idle minute
    det = RunDetector(RULES)
    recs = feed_all([s for s in samples if s.ts <= at(2760)], det)
    assert recs == []
    assert det.flush(at(2789)) == []
    assert det.flush(at(2790)) == [r]


def test_a_redelivered_or_older_sample_is_ignored() -> None:
    samples = sampled_test(32 * 60, 40.0)
    doubled: list[GensetSample] = []
    for i, s in enumerate(samples):
        doubled.append(s)
        doubled.append(s)
        if i > 10:
            doubled.append(samples[i - 5])
    assert feed_all(doubled) == feed_all(samples)


def test_a_naive_sample_time_is_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        RunDetector(RULES).feed(
            GensetSample(datetime(2026, 11, 3, 2, 0), "gen1", "auto", "running", 1.0, None)
        )


@pytest.mark.parametrize(
    ("metrics", "mains"),
    [
        ({"alarm_mains_failed": "active_indication"}, True),
        ({"alarm_mains_failed": "warning"}, True),
        ({"alarm_mains_failed": "shutdown"}, True),
        ({"alarm_mains_failed": True}, True),
        ({"alarm_mains_failed": "inactive_indication"}, False),
        ({"alarm_mains_failed": "not_active"}, False),
        ({"alarm_mains_failed": "disabled"}, False),
        ({"alarm_mains_failed": "unimplemented"}, False),
        ({"alarm_mains_failed": False}, False),
        ({"alarm_mains_failed": None}, False),
        ({"alarm_mains_failed_to_close": "warning"}, None),  # a breaker alarm, not a mains failure
        ({"alarm_alternative_aux_mains_fail": "warning"}, True),
        ({"alarm_alternative_aux_mains_fail": "not_active", "alarm_utility_failure": "warning"}, True),
        ({"alarm_alternative_aux_mains_fail": "not_active"}, False),
        ({}, None),
    ],
)
def test_sample_from_metrics_reads_the_mains_alarm(metrics: dict[str, Value], mains: bool | None) -> None:
    assert sample_from_metrics(T0, "gen1", metrics).mains_failed is mains


def test_sample_from_metrics_reads_mode_state_and_load() -> None:
    s = sample_from_metrics(
        T0, "gen1", {"control_mode": "test_on_load", "engine_state": "running", "gen_load_pct": 41}
    )
    assert s == GensetSample(T0, "gen1", "test_on_load", "running", 41.0, None)
    assert sample_from_metrics(T0, "gen1", {"gen_load_pct": True}).load_pct is None
    assert sample_from_metrics(T0, "gen1", {"gen_load_pct": float("nan")}).load_pct is None


@pytest.mark.parametrize(
    ("scenario", "poll_s", "clear_at_s", "trigger", "counts", "reason_starts"),
    [
        ("generator_monthly_test", 5, None, "test_mode", True, "34.9 min at ≥ 30 % (avg 76.7 %): counts / "),
        ("generator_short_test", 10, None, "test_mode", False, "only 19.8 min on load"),
        ("generator_light_test", 5, None, "test_mode", False, "load 20 % below 30 % / "),
        ("utility_outage", 1, 600, "mains_failure", False, "only 9.8 min on load"),
    ],
)
def test_the_simulated_room_read_as_a_poller_would(
    scenario: str, poll_s: int, clear_at_s: int | None, trigger: str, counts: bool, reason_starts: str
) -> None:
    """The simulator's genset (profile dse-gencomm behaviour), one simulated second per step."""
    decls = [DeviceDecl("ups1", "ups"), DeviceDecl("ups2", "ups"), DeviceDecl("gen1", "genset")]
    m = RoomModel([*decls, DeviceDecl("crac1", "crac", "row-a"), DeviceDecl("crac2", "crac", "row-b")])
    m.speed = 60.0
    m.step(0.0)
    m.trigger(scenario)
    samples = []
    for sim_s in range(1, 2400):
        m.step(sim_s / m.speed)
        if sim_s == clear_at_s:
            m.clear(scenario)
        if sim_s % poll_s == 0:
            samples.append(sample_from_metrics(at(sim_s), "gen1", m.values("gen1")))
    [r] = feed_all(samples)
    assert (r.trigger, r.counts) == (trigger, counts)
    assert r.reason is not None
    assert r.reason.startswith(reason_starts)
    assert detect_runs(samples, RULES) == [r.model_copy(update={"source": "history"})]


# --- UPS self-tests -------------------------------------------------------------------------------------


def us(t: float, result: str | None, source: str | None = "internal", device: str = "ups-1") -> UpsSample:
    return UpsSample(at(t), device, result, source)


def feed_ups(samples: Iterable[UpsSample], det: UpsTestDetector | None = None) -> list[UpsTest]:
    det = det or UpsTestDetector()
    return [r for s in samples for r in det.feed(s)]


def test_in_progress_then_passed_records_once() -> None:
    recs = feed_ups([us(0, "none"), us(60, "in_progress"), us(70, "in_progress"), us(80, "passed")])
    recs += feed_ups([])  # nothing pending
    [r] = recs
    assert (r.device, r.tested_at, r.result, r.test_type) == ("ups-1", at(80), "passed", "self_test")
    assert (r.started_by, r.source, r.notes) == ("internal", "telemetry", None)


def test_a_persistent_passed_records_once_with_the_first_read_note() -> None:
    det = UpsTestDetector()
    recs = feed_ups([us(t, "passed") for t in range(0, 600, 60)], det)
    [r] = recs
    assert r.tested_at == at(0)
    assert r.notes == FIRST_READ_NOTE
    assert "首次讀取時已有結果" in FIRST_READ_NOTE


def test_a_restart_from_json_state_does_not_duplicate() -> None:
    det = UpsTestDetector()
    assert len(feed_ups([us(0, "in_progress"), us(10, "passed")], det)) == 1
    state = json.loads(json.dumps(det.to_json()))
    again = UpsTestDetector.from_json(state)
    assert feed_ups([us(20, "passed"), us(30, "passed")], again) == []
    [r] = feed_ups([us(40, "in_progress", "protocol"), us(50, "passed", "protocol")], again)
    assert (r.tested_at, r.started_by) == (at(50), "protocol")


def test_failed_after_passed_records_and_a_missing_reading_changes_nothing() -> None:
    recs = feed_ups(
        [us(0, "in_progress"), us(10, "passed"), us(20, None), us(30, "passed"), us(40, "failed")]
    )
    assert [(r.result, r.tested_at) for r in recs] == [("passed", at(10)), ("failed", at(40))]


def test_every_final_value_and_the_test_source() -> None:
    samples = [us(0, "none", "none")]
    for i, final in enumerate(("passed", "warning", "failed", "aborted", "invalid_test")):
        samples += [us(10 * i + 5, "in_progress", "local_ui"), us(10 * i + 9, final, "local_ui")]
    recs = feed_ups(samples)
    assert [r.result for r in recs] == ["passed", "warning", "failed", "aborted", "invalid_test"]
    assert {r.started_by for r in recs} == {"local_ui"}
    [r] = feed_ups([us(0, "unknown", "none"), us(10, "warning", "none")])
    assert r.started_by is None


def test_ups_devices_are_independent_and_history_matches_live() -> None:
    samples = [
        us(0, "passed", device="ups-1"),
        us(0, "none", device="ups-2"),
        us(10, "passed", device="ups-1"),
        us(15, "in_progress", device="ups-2"),
        us(20, "aborted", device="ups-2"),
        us(30, "in_progress", device="ups-1"),
        us(40, "passed", device="ups-1"),
    ]
    live = feed_ups(samples)
    assert [(r.device, r.tested_at) for r in live] == [("ups-1", at(0)), ("ups-2", at(20)), ("ups-1", at(40))]
    assert detect_ups_tests(reversed(samples)) == [r.model_copy(update={"source": "history"}) for r in live]


# --- incident reviews from alerts ------------------------------------------------------------------------

INCIDENTS = Incidents()


def alert(
    *,
    severity: str = "critical",
    klass: str = "ups",
    state: str = "firing",
    rule: str = "ups_on_battery",
    resolved_at: str | None = None,
    acked: dict[str, Any] | None = None,
    notice: str = "firing",
) -> bytes:
    return json.dumps(
        {
            "schema": "roomguard.alert/1",
            "id": f"{rule}:tpe1:機房A:ups-1",
            "state": state,
            "severity": severity,
            "rule": rule,
            "labels": {
                "site": "tpe1",
                "room": "機房A",
                "device": "ups-1",
                "class": klass,
                "metric": "on_battery",
            },
            "value": True,
            "limit": None,
            "started_at": "2026-11-03T02:15:00.123456Z",
            "resolved_at": resolved_at,
            "acked": acked,
            "texts": {"zh_TW": "機房A ups-1 改由電池供電", "en": "ups-1 in 機房A is on battery"},
            "notice": {"kind": notice, "level": 0},
        },
        ensure_ascii=False,
    ).encode()


def parsed(data: bytes) -> AlertPayload:
    p = AlertPayload.parse(data)
    assert p is not None
    return p


def opened(context: Sequence[str] = ()) -> Incident:
    inc = incident_from_alert(parsed(alert()), None, INCIDENTS, context)
    assert inc is not None
    return inc


STARTED = datetime(2026, 11, 3, 2, 15, 0, 123456, tzinfo=UTC)


def test_a_critical_ups_alert_opens_a_review_due_in_review_days() -> None:
    inc = opened(["02:14:50 ups-1 input 0 V, on battery", "02:15:00 gen1 pre_start"])
    assert inc.incident_id == "ups_on_battery:tpe1:機房A:ups-1@2026-11-03T02:15:00Z"
    assert inc.ref() == inc.incident_id
    assert inc.started_at == STARTED
    assert inc.due_at == STARTED + timedelta(days=14)
    assert inc.summary == "機房A ups-1 改由電池供電 / ups-1 in 機房A is on battery"
    assert (inc.alert_id, inc.rule, inc.severity) == (
        "ups_on_battery:tpe1:機房A:ups-1",
        "ups_on_battery",
        "critical",
    )
    assert (inc.device_class, inc.room, inc.device) == ("ups", "機房A", "ups-1")
    assert inc.timeline == [
        "fired at 2026-11-03T02:15:00+00:00 / 2026-11-03T02:15:00+00:00 告警發生",
        "02:14:50 ups-1 input 0 V, on battery",
        "02:15:00 gen1 pre_start",
    ]
    assert inc.resolved_at is None
    assert inc.cause is None


def test_a_warning_or_an_unreviewed_class_opens_nothing() -> None:
    assert incident_from_alert(parsed(alert(severity="warning")), None, INCIDENTS) is None
    assert incident_from_alert(parsed(alert(klass="system")), None, INCIDENTS) is None


def test_a_critical_door_alert_opens_a_review() -> None:
    inc = incident_from_alert(parsed(alert(klass="door", rule="door_forced")), None, INCIDENTS)
    assert inc is not None
    assert inc.device_class == "door"
    assert inc.incident_id.startswith("door_forced:")


def test_resolution_updates_resolved_at_and_the_timeline_but_not_what_people_wrote() -> None:
    inc = opened(["context"]).model_copy(
        update={"cause": "台電停電", "owner": "王小明", "corrective_action": "通知台電"}
    )
    acked = {"by": "王小明", "at": "2026-11-03T02:17:40.000000Z", "note": "已通知電力廠商"}
    resolved = alert(state="resolved", resolved_at="2026-11-03T02:40:00.5Z", acked=acked, notice="resolved")
    after = incident_from_alert(parsed(resolved), inc, INCIDENTS, ["context again"])
    assert after is not None
    assert after.resolved_at == datetime(2026, 11, 3, 2, 40, 0, 500000, tzinfo=UTC)
    assert (after.cause, after.owner, after.corrective_action) == ("台電停電", "王小明", "通知台電")
    assert (after.summary, after.due_at) == (inc.summary, inc.due_at)
    assert after.timeline == [
        *inc.timeline,
        "acknowledged by 王小明 at 2026-11-03T02:17:40+00:00 / "
        "2026-11-03T02:17:40+00:00 由 王小明 確認 (已通知電力廠商)",
        "resolved at 2026-11-03T02:40:00+00:00 / 2026-11-03T02:40:00+00:00 告警恢復",
    ]
    # redelivered (even rendered in the site's zone): nothing changes
    assert incident_from_alert(parsed(resolved), after, INCIDENTS) == after
    taipei = incident_from_alert(parsed(resolved), after, INCIDENTS, tz=ZoneInfo("Asia/Taipei"))
    assert taipei == after


def test_a_redelivered_firing_payload_is_idempotent() -> None:
    inc = opened(["context"])
    assert incident_from_alert(parsed(alert()), inc, INCIDENTS, ["context"]) == inc


def test_a_review_first_seen_resolved_holds_the_whole_story() -> None:
    resolved = alert(state="resolved", resolved_at="2026-11-03T02:40:00Z")
    inc = incident_from_alert(parsed(resolved), None, INCIDENTS, ["ctx"], tz=ZoneInfo("Asia/Taipei"))
    assert inc is not None
    assert inc.timeline == [
        "fired at 2026-11-03T10:15:00+08:00 / 2026-11-03T10:15:00+08:00 告警發生",
        "ctx",
        "resolved at 2026-11-03T10:40:00+08:00 / 2026-11-03T10:40:00+08:00 告警恢復",
    ]


def test_the_review_of_another_firing_is_refused() -> None:
    other = opened().model_copy(update={"incident_id": "x@2026-01-01T00:00:00Z"})
    with pytest.raises(ValueError, match="not the one"):
        incident_from_alert(parsed(alert()), other, INCIDENTS)


def test_payload_parsing() -> None:
    assert AlertPayload.parse(b"") is None  # cleared retained alert
    assert parse_alert(b"") is None
    assert parse_alert(alert()) == AlertPayload.parse(alert())
    p = parsed(alert(acked={"by": "王小明", "at": "2026-11-03T02:17:40Z", "note": None}))
    assert (p.id, p.rule, p.severity, p.state, p.notice_kind) == (
        "ups_on_battery:tpe1:機房A:ups-1",
        "ups_on_battery",
        "critical",
        "firing",
        "firing",
    )
    assert (p.acked_by, p.acked_at, p.acked_note) == (
        "王小明",
        datetime(2026, 11, 3, 2, 17, 40, tzinfo=UTC),
        None,
    )
    assert p.labels["class"] == "ups"
    with pytest.raises(ValueError, match="not JSON"):
        AlertPayload.parse(b"{not json")
    with pytest.raises(ValueError, match="schema"):
        AlertPayload.parse(b'{"schema": "roomguard.alert-summary/1", "id": "summary:tpe1"}')
    with pytest.raises(ValueError, match="started_at"):
        AlertPayload.parse(alert().replace(b"2026-11-03T02:15:00.123456Z", b"yesterday"))
    with pytest.raises(ValueError, match="UTF-8"):
        AlertPayload.parse(b"\xff\xfe")


def test_alert_info_from_a_payload() -> None:
    info = alert_info(parsed(alert(acked={"by": "王小明", "at": "2026-11-03T02:17:40Z"})))
    assert (info.id, info.rule, info.severity, info.state) == (
        "ups_on_battery:tpe1:機房A:ups-1",
        "ups_on_battery",
        "critical",
        "firing",
    )
    assert (info.device_class, info.room, info.device) == ("ups", "機房A", "ups-1")
    assert info.started_at == STARTED
    assert (info.acked_by, info.resolved_at) == ("王小明", None)
    assert info.text_en == "ups-1 in 機房A is on battery"
