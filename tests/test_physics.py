"""RoomModel: scenario timelines with an injected clock (no sleeps)."""

import pytest

from devices.door import DoorTracker
from devices.reading import Value
from devices.sim.physics import SCENARIOS, DeviceDecl, RoomModel, UnknownScenario

CANONICAL = {
    "ups": {
        "output_source",
        "on_battery",
        "battery_status",
        "battery_charge_pct",
        "runtime_s",
        "seconds_on_battery_s",
        "battery_voltage_v",
        "battery_temp_c",
        "input_voltage_v",
        "input_freq_hz",
        "output_voltage_v",
        "output_freq_hz",
        "output_load_pct",
        "test_result",
        "battery_replace",
    },
    "genset": {
        "control_mode",
        "engine_state",
        "oil_pressure_kpa",
        "coolant_temp_c",
        "fuel_level_pct",
        "battery_voltage_v",
        "engine_speed_rpm",
        "gen_freq_hz",
        "gen_l1n_voltage_v",
        "gen_l2n_voltage_v",
        "gen_l3n_voltage_v",
        "gen_l1_current_a",
        "gen_power_w",
        "gen_load_pct",
        "run_time_s",
        "starts_count",
    },
    "crac": {
        "unit_state",
        "return_air_temp_c",
        "supply_air_temp_c",
        "return_rh_pct",
        "temp_setpoint_c",
        "cooling_capacity_pct",
        "status",
    },
    "env": {"temp_c", "rh_pct", "dew_point_c"},
    "door": {"door_open", "rex", "lock_engaged"},
    "contact": {"leak", "smoke"},
}


def room(seed: int = 0, speed: float = 1.0) -> RoomModel:
    return RoomModel(
        [
            DeviceDecl("ups1", "ups"),
            DeviceDecl("gen1", "genset"),
            DeviceDecl("crac1", "crac", "row-a"),
            DeviceDecl("crac2", "crac", "row-b"),
            DeviceDecl("env-a", "env", "row-a"),
            DeviceDecl("env-b", "env", "row-b"),
            DeviceDecl("door1", "door"),
            DeviceDecl("leak1", "contact"),
        ],
        seed=seed,
        speed=speed,
    )


def num(v: Value) -> float:
    """A reading that must be numeric (values() is typed as the whole Value union)."""
    assert isinstance(v, (int, float)), v
    return v


def flag(v: Value) -> bool | None:
    """A reading that must be a boolean or missing."""
    assert v is None or isinstance(v, bool), v
    return v


def run(m: RoomModel, start: float, end: float, step: float = 1.0):
    """Step from start to end, yielding (t, model) after each step."""
    t = start
    while t < end - 1e-9:
        t = min(end, t + step)
        m.step(t)
        yield t, m


def test_baseline_values_use_canonical_names_and_realistic_numbers() -> None:
    m = room()
    m.step(1.0)
    for dev, decl in m.devices.items():
        names = set(m.values(dev))
        assert CANONICAL[decl.device_class] <= names, decl.device_class
        assert all(n == n.lower() for n in names)
    ups = m.values("ups1")
    assert ups["output_source"] == "normal"
    assert ups["on_battery"] is False
    assert ups["battery_charge_pct"] == 100.0
    assert ups["runtime_s"] == pytest.approx(1800, abs=1)
    assert (ups["input_voltage_v"], ups["input_freq_hz"]) == (220.0, 60.0)
    # The nameplate agrees with what the UPS measures (the demo's ups-1 said 50 Hz nominal at 60 Hz).
    assert (ups["input_freq_nominal_hz"], ups["output_freq_nominal_hz"]) == (60.0, 60.0)
    assert ups["output_voltage_nominal_v"] == ups["output_voltage_v"] == 220.0
    gen = m.values("gen1")
    assert (gen["control_mode"], gen["engine_state"]) == ("auto", "stopped")
    assert (gen["fuel_level_pct"], gen["battery_voltage_v"]) == (85.0, 27.4)
    crac = m.values("crac1")
    assert crac["unit_state"] == "on"
    assert crac["return_air_temp_c"] == pytest.approx(24.0, abs=0.2)
    assert crac["supply_air_temp_c"] == pytest.approx(16.0, abs=0.2)
    for env in ("env-a", "env-b"):
        v = m.values(env)
        assert 20.8 <= num(v["temp_c"]) <= 24.2
        assert 41.0 <= num(v["rh_pct"]) <= 49.0
    assert m.values("door1") == {"door_open": False, "rex": False, "lock_engaged": True}
    assert m.values("leak1") == {"leak": False, "smoke": False}


def test_utility_outage_timeline() -> None:
    m = room()
    m.step(0.0)
    m.trigger("utility_outage")
    states: dict[float, tuple[Value, Value]] = {}
    running_at = loaded_at = back_at = None
    for t, _ in run(m, 0.0, 60.0):
        ups, gen = m.values("ups1"), m.values("gen1")
        states[t] = (ups["on_battery"], gen["engine_state"])
        if t == 3.0:
            assert ups["on_battery"] is True
            assert ups["output_source"] == "battery"
            assert ups["input_voltage_v"] == 0.0
            assert ups["seconds_on_battery_s"] == 3
            assert gen["engine_state"] == "pre_start"
        if running_at is None and gen["engine_state"] == "running":
            running_at = t
            assert gen["engine_speed_rpm"] == 1800
            assert gen["gen_freq_hz"] == 60.0
        if loaded_at is None and num(gen["gen_power_w"]) > 0:
            loaded_at = t
        if back_at is None and ups["output_source"] == "normal":
            back_at = t
    assert "warming_up" in {s[1] for s in states.values()}
    assert running_at is not None
    assert 10.0 <= running_at <= 15.0
    assert loaded_at is not None
    assert loaded_at >= running_at
    assert back_at is not None
    assert back_at <= 16.0
    ups, gen = m.values("ups1"), m.values("gen1")
    assert ups["on_battery"] is False
    assert ups["seconds_on_battery_s"] == 0
    assert ups["input_freq_hz"] == 60.0
    assert 30.0 <= num(gen["gen_load_pct"]) <= 80.0
    assert gen["gen_power_w"] == pytest.approx(num(gen["gen_load_pct"]) * 1500, rel=0.01)
    assert gen["starts_count"] == 1
    run_before = num(gen["run_time_s"])

    m.clear("utility_outage")
    seen = []
    for _, _ in run(m, 60.0, 300.0):
        seen.append(m.values("gen1")["engine_state"])
    assert seen[5] == "running"  # retransfer delay: mains must be stable first
    assert "cooling_down" in seen
    gen = m.values("gen1")
    assert gen["engine_state"] == "stopped"
    assert gen["gen_power_w"] == 0
    assert gen["starts_count"] == 1
    assert num(gen["run_time_s"]) >= run_before + 60
    assert m.values("ups1")["output_source"] == "normal"


def test_outage_without_generator_drains_the_battery_at_a_physical_rate() -> None:
    m = RoomModel([DeviceDecl("ups1", "ups")])
    m.step(0.0)
    m.trigger("utility_outage")
    m.step(600.0)
    ups = m.values("ups1")
    assert ups["seconds_on_battery_s"] == 600
    assert ups["battery_charge_pct"] == pytest.approx(100 - 600 / 18, abs=0.2)
    assert ups["runtime_s"] == pytest.approx(1200, abs=2)
    m.step(1600.0)
    assert m.values("ups1")["battery_status"] == "low"
    m.step(2000.0)
    ups = m.values("ups1")
    assert (ups["battery_status"], ups["output_source"], ups["output_voltage_v"]) == ("depleted", "none", 0.0)


def test_crac_failure_heats_near_faster_than_far_within_bounds() -> None:
    m = room()
    m.step(0.0)
    a0, b0 = num(m.values("env-a")["temp_c"]), num(m.values("env-b")["temp_c"])
    m.trigger("crac_failure", "crac1")
    for _ in run(m, 0.0, 600.0):
        pass
    crac1 = m.values("crac1")
    assert (crac1["unit_state"], crac1["status"], crac1["cooling_capacity_pct"]) == ("off", "critical", 0.0)
    assert m.values("crac2")["cooling_capacity_pct"] == 100.0
    near_rate = (num(m.values("env-a")["temp_c"]) - a0) / 10.0  # °C/min over 10 min
    far_rate = (num(m.values("env-b")["temp_c"]) - b0) / 10.0
    assert 0.5 <= near_rate <= 1.0
    assert 0.1 <= far_rate < near_rate
    assert num(m.values("crac1")["supply_air_temp_c"]) > 20.0
    assert num(m.values("env-a")["rh_pct"]) < 40.0  # same moisture, warmer air
    for _ in run(m, 600.0, 20_000.0, step=60.0):
        pass
    assert num(m.values("env-a")["temp_c"]) < a0 + 20.5  # approaches a ceiling, never runs away
    m.clear("crac_failure")
    for _ in run(m, 20_000.0, 26_000.0, step=60.0):
        pass
    assert m.values("env-a")["temp_c"] == pytest.approx(a0, abs=0.5)
    assert m.values("crac1")["unit_state"] == "on"


def test_generator_monthly_test_meets_nfpa110_30_min_at_30_pct() -> None:
    m = room(speed=120.0)  # 30 simulated minutes in 15 s of caller clock
    m.step(0.0)
    m.trigger("generator_monthly_test")
    assert m.values("gen1")["control_mode"] == "test_on_load"
    on_load_s = 0.0
    modes, states = [], []
    for _ in run(m, 0.0, 40.0, step=0.5):  # 0.5 s of caller clock = 60 s simulated
        g = m.values("gen1")
        modes.append(g["control_mode"])
        states.append(g["engine_state"])
        if g["engine_state"] == "running" and num(g["gen_load_pct"]) >= 30.0:
            on_load_s += 60.0
    assert on_load_s >= 30 * 60
    assert states.index("cooling_down") > states.index("running")
    assert states[-1] == "stopped"
    assert modes[-1] == "auto"
    assert m.values("gen1")["starts_count"] == 1
    assert m.values("ups1")["output_source"] == "normal"  # mains present throughout: no battery use
    assert not m.active()


def test_monthly_test_cleared_early_stops_the_engine() -> None:
    m = room()
    m.step(0.0)
    m.trigger("generator_monthly_test", "gen1")
    m.step(120.0)
    assert m.values("gen1")["engine_state"] == "running"
    assert num(m.active()[0]["on_load_s"]) > 90
    m.clear("generator_monthly_test")
    m.step(300.0)
    assert m.values("gen1")["engine_state"] == "stopped"


def test_sensor_fault_gives_none_and_clears() -> None:
    m = room()
    m.step(0.0)
    assert m.trigger("sensor_fault") == "env-a"
    m.step(1.0)
    faulted = m.values("env-a")
    assert set(faulted) >= {"temp_c", "rh_pct", "dew_point_c"}
    assert all(v is None for v in faulted.values())
    assert m.values("env-b")["temp_c"] is not None
    m.clear("sensor_fault")
    m.step(2.0)
    assert isinstance(m.values("env-a")["temp_c"], float)


def test_device_silent_exposes_the_set() -> None:
    m = room()
    m.trigger("device_silent", "crac2")
    assert m.silent_devices == {"crac2"}
    m.clear("device_silent", "crac2")
    assert m.silent_devices == set()


def test_door_forced_has_no_grant_and_tracker_says_forced() -> None:
    m = room()
    tracker = DoorTracker(held_open_after_s=30.0, access_grant_window_s=10.0)
    m.step(0.0)
    m.trigger("door_forced")
    m.step(1.0)
    assert m.values("door1")["door_open"] is True
    assert m.drain_events() == []
    assert tracker.update(1.0, True, False).state == "forced_open"
    m.clear("door_forced")
    m.step(2.0)
    assert m.values("door1")["door_open"] is False


def test_door_held_open_emits_grant_then_opens_and_tracker_says_held() -> None:
    m = room()
    tracker = DoorTracker(held_open_after_s=30.0, access_grant_window_s=10.0)
    m.step(100.0)
    m.trigger("door_held_open", "door1")
    states = []
    for t, _ in run(m, 100.0, 140.0):
        for ev in m.drain_events():
            assert (ev.kind, ev.device) == ("access_granted", "door1")
            tracker.note_access_granted(ev.ts)
        d = m.values("door1")
        states.append(tracker.update(t, flag(d["door_open"]), flag(d["rex"])).state)
    assert states[0] == "closed"
    assert states[3] == "open"
    assert states[-1] == "held_open"
    assert "forced_open" not in states


def test_scheduled_trigger_fires_at_its_time() -> None:
    m = room()
    m.step(0.0)
    m.trigger("water_leak", at=50.0)
    m.step(49.0)
    assert m.values("leak1")["leak"] is False
    m.step(51.0)
    assert m.values("leak1")["leak"] is True
    m.trigger("normal")
    m.step(52.0)
    assert m.values("leak1")["leak"] is False
    assert m.active() == []


def test_unknown_scenario_and_wrong_device_are_clear_errors() -> None:
    m = room()
    with pytest.raises(UnknownScenario, match="valid scenarios: normal, utility_outage"):
        m.trigger("earthquake")
    with pytest.raises(ValueError, match="needs a crac device"):
        m.trigger("crac_failure", "ups1")
    with pytest.raises(ValueError, match="unknown device"):
        m.trigger("door_forced", "door9")
    with pytest.raises(ValueError, match="whole room"):
        m.trigger("utility_outage", "ups1")
    assert set(SCENARIOS) >= {
        "normal",
        "utility_outage",
        "crac_failure",
        "door_forced",
        "door_held_open",
        "sensor_fault",
        "device_silent",
        "generator_monthly_test",
    }


def test_clock_going_backwards_does_not_rewind_the_room() -> None:
    m = room()
    m.step(0.0)
    m.trigger("utility_outage")
    m.step(5.0)
    m.step(2.0)
    assert m.sim_time == 5.0
    m.step(4.0)
    assert m.sim_time == 7.0


def test_deterministic_given_a_seed() -> None:
    def trace(seed: int) -> list[dict[str, dict[str, Value]]]:
        m = room(seed=seed)
        m.step(0.0)
        m.trigger("crac_failure")
        m.trigger("utility_outage", at=30.0)
        return [m.snapshot() for _ in run(m, 0.0, 120.0)]

    assert trace(7) == trace(7)
    assert trace(7) != trace(8)
