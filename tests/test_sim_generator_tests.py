"""Simulated generator tests on load (monthly, short, light): what a monthly-test detector will see.

Pure RoomModel with an injected clock (no sleeps). The room is sped up so a half-hour test takes about
half a minute of caller clock; every step is one simulated second, read back as a poller would.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devices.reading import Value
from devices.sim.physics import GEN_TESTS, SCENARIOS, DeviceDecl, RoomModel
from devices.sim.physics_power import COOL_DOWN_S

SPEED = 60.0  # simulated seconds per second of the caller's clock
MIN_COUNTED_S = 30 * 60.0
MIN_COUNTED_PCT = 30.0


def heavy_room() -> RoomModel:
    """The example site's power chain: two UPSes and two CRACs draw well over 30 % of the set."""
    return RoomModel(
        [
            DeviceDecl("ups1", "ups"),
            DeviceDecl("ups2", "ups"),
            DeviceDecl("gen1", "genset"),
            DeviceDecl("crac1", "crac", "row-a"),
            DeviceDecl("crac2", "crac", "row-b"),
        ],
        speed=SPEED,
    )


def num(v: Value) -> float:
    assert isinstance(v, (int, float)), v
    return float(v)


@dataclass
class Run:
    """One genset's readings, one per simulated second, from the trigger until it stopped again."""

    samples: list[dict[str, Value]] = field(default_factory=list)
    end_s: float = 0.0  # simulated seconds from the trigger to engine_state stopped

    def seconds(self, **match: Value) -> float:
        return float(sum(all(s[k] == v for k, v in match.items()) for s in self.samples))

    def on_load_s(self, at_least_pct: float) -> float:
        """Seconds running (cool-down excluded) at >= at_least_pct of the rating, as a detector counts."""
        return float(
            sum(
                s["engine_state"] == "running" and num(s["gen_load_pct"]) >= at_least_pct
                for s in self.samples
            )
        )

    def states(self) -> list[Value]:
        """engine_state in order, repeats collapsed."""
        out: list[Value] = []
        for s in self.samples:
            if not out or out[-1] != s["engine_state"]:
                out.append(s["engine_state"])
        return out


def play(m: RoomModel, scenario: str, limit_s: float = 3 * 3600.0) -> Run:
    """Trigger `scenario` at caller time 0 and step one simulated second at a time until the set stops."""
    m.step(0.0)
    m.trigger(scenario)
    run = Run()
    t0 = m.sim_time
    t = 0.0
    while m.sim_time - t0 < limit_s:
        t += 1.0 / m.speed
        m.step(t)
        g = m.values("gen1")
        run.samples.append(g)
        if g["engine_state"] == "stopped" and len(run.samples) > 60:
            run.end_s = m.sim_time - t0
            return run
    raise AssertionError(f"{scenario}: the set never stopped within {limit_s} s")


def test_the_generator_tests_are_scenarios_with_both_languages() -> None:
    for name in ("generator_monthly_test", "generator_short_test", "generator_light_test"):
        assert name in GEN_TESTS
        info = SCENARIOS[name]
        assert info.target_class == "genset"
        assert info.zh
        assert info.en
        assert info.zh != info.en
    assert GEN_TESTS["generator_short_test"].on_load_s == 20 * 60.0
    assert GEN_TESTS["generator_light_test"].load_pct < MIN_COUNTED_PCT


def test_the_readme_lists_every_scenario_in_both_languages() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for info in SCENARIOS.values():
        assert f"| `{info.name}` | {info.en} | {info.zh} |" in readme, info.name


def test_monthly_test_accumulates_30_min_at_30_pct_then_auto_cool_down_stop() -> None:
    m = heavy_room()
    run = play(m, "generator_monthly_test")
    assert run.on_load_s(MIN_COUNTED_PCT) >= MIN_COUNTED_S
    assert run.seconds(control_mode="test_on_load", engine_state="running") >= MIN_COUNTED_S
    assert run.states() == ["pre_start", "warming_up", "running", "cooling_down", "stopped"]
    cooling = [s for s in run.samples if s["engine_state"] == "cooling_down"]
    assert {s["control_mode"] for s in cooling} == {"auto"}  # test over: back to auto for the cool-down
    assert len(cooling) == pytest.approx(COOL_DOWN_S, abs=2)
    assert run.samples[-1]["control_mode"] == "auto"
    assert run.samples[-1]["gen_power_w"] == 0
    assert run.end_s == pytest.approx(2178, abs=5)  # 35 min on load + start, loading and cool-down
    assert {s["alarm_mains_failed"] for s in run.samples} == {"inactive_indication"}
    assert m.values("ups1")["output_source"] == "normal"  # mains present throughout
    assert m.values("gen1")["starts_count"] == 1
    assert not m.active()


def test_short_test_ends_after_20_min_on_load() -> None:
    m = heavy_room()
    run = play(m, "generator_short_test")
    on_load = run.on_load_s(MIN_COUNTED_PCT)
    assert on_load == pytest.approx(20 * 60, abs=5)
    assert on_load < MIN_COUNTED_S  # a detector must record it but not count it
    assert run.seconds(control_mode="test_on_load", engine_state="running") == pytest.approx(20 * 60, abs=10)
    assert run.states() == ["pre_start", "warming_up", "running", "cooling_down", "stopped"]
    assert run.samples[-1]["control_mode"] == "auto"
    assert run.end_s == pytest.approx(1278, abs=5)
    assert not m.active()


def test_light_test_runs_30_min_at_about_20_pct() -> None:
    m = heavy_room()  # the building alone would load the set to ~75 %: the load bank alone carries it
    run = play(m, "generator_light_test")
    on_load = [
        num(s["gen_load_pct"])
        for s in run.samples
        if s["control_mode"] == "test_on_load"
        and s["engine_state"] == "running"
        and num(s["gen_power_w"]) > 0
    ]
    assert len(on_load) >= MIN_COUNTED_S
    assert all(p < MIN_COUNTED_PCT for p in on_load)
    assert sum(10.0 < p < MIN_COUNTED_PCT for p in on_load) >= MIN_COUNTED_S
    assert run.on_load_s(10.0) >= MIN_COUNTED_S
    assert run.on_load_s(MIN_COUNTED_PCT) == 0  # never heavy enough to count
    assert run.states() == ["pre_start", "warming_up", "running", "cooling_down", "stopped"]
    assert run.samples[-1]["control_mode"] == "auto"
    assert run.end_s == pytest.approx(2178, abs=5)  # 35 min on load + start, loading and cool-down
    assert m.values("ups1")["output_source"] == "normal"  # the building stayed on mains
    assert not m.active()


@pytest.mark.parametrize("speed", [1.0, 600.0])
def test_the_speed_factor_shortens_the_caller_clock_only(speed: float) -> None:
    m = heavy_room()
    m.speed = speed
    m.step(0.0)
    m.trigger("generator_short_test")
    wall = (20 * 60 + 30) / speed  # a little past the 20 minutes on load, in caller seconds
    m.step(wall)
    assert m.values("gen1")["control_mode"] == "auto"
    assert m.values("gen1")["engine_state"] == "cooling_down"
    m.step(wall + 2 * COOL_DOWN_S / speed)
    assert m.values("gen1")["engine_state"] == "stopped"


def test_a_new_test_replaces_the_one_running_on_the_same_set() -> None:
    m = heavy_room()
    m.step(0.0)
    m.trigger("generator_monthly_test")
    m.step(300.0 / SPEED)
    m.trigger("generator_light_test")
    assert [a["scenario"] for a in m.active()] == ["generator_light_test"]
    m.step(600.0 / SPEED)
    g = m.values("gen1")
    assert (g["control_mode"], g["engine_state"]) == ("test_on_load", "running")
    assert num(g["gen_load_pct"]) == pytest.approx(20.0, abs=0.5)
    m.clear("generator_light_test")
    m.step(900.0 / SPEED)
    assert (m.values("gen1")["control_mode"], m.values("gen1")["engine_state"]) == ("auto", "stopped")


def test_utility_outage_shows_the_mains_failure_on_the_genset() -> None:
    m = heavy_room()
    m.speed = 1.0
    m.step(0.0)
    m.trigger("utility_outage")
    m.step(30.0)
    g = m.values("gen1")
    assert g["control_mode"] == "auto"  # started by itself, not by a test or by hand
    assert g["engine_state"] == "running"
    assert g["alarm_mains_failed"] == "active_indication"
    assert num(g["gen_load_pct"]) > MIN_COUNTED_PCT
    m.clear("utility_outage")
    m.step(35.0)
    # Mains back: the alarm clears at once while the set still carries the load (retransfer delay).
    g = m.values("gen1")
    assert g["alarm_mains_failed"] == "inactive_indication"
    assert g["engine_state"] == "running"
    m.step(200.0)
    assert m.values("gen1")["engine_state"] == "stopped"
