"""Simulated power chain: utility, UPS battery, standby generator and its start sequence (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from devices.reading import Value

# Taiwan: 60 Hz, 220/380 V three-phase in commercial buildings.
GRID_V = 220.0
GRID_HZ = 60.0
RATED_RPM = 1800.0  # 4-pole alternator at 60 Hz
POWER_FACTOR = 0.9

# Generator start sequence (DSE-style controller). Outage at t=0: mains-fail detection 1 s, pre-start
# (glow plugs, crank) 3 s, warming up 8 s, running at ~12 s, on load once stable 2 s later: well within
# the 10-15 s an ATS design for a machine room expects.
MAINS_FAIL_DELAY_S = 1.0
PRE_START_S = 3.0
WARM_UP_S = 8.0
STABLE_S = 2.0
COOL_DOWN_S = 60.0
RETRANSFER_DELAY_S = 10.0  # mains must be back this long before the ATS returns the load to it
LOAD_RAMP_W_PER_S = 25_000.0


@dataclass
class UpsModel:
    """One double-conversion UPS: battery charge and runtime follow the load while on battery."""

    rated_w: float = 80_000.0
    load_pct: float = 35.0
    charge_pct: float = 100.0
    full_runtime_s: float = 1800.0  # at load_pct
    on_battery_s: float = 0.0
    input_v: float = GRID_V
    input_hz: float = GRID_HZ
    battery_temp_c: float = 24.0
    test_result: str = "passed"

    @property
    def on_battery(self) -> bool:
        """True while the rectifier has no input."""
        return self.input_v < 100.0

    @property
    def depleted(self) -> bool:
        """Battery empty: the UPS has dropped its output."""
        return self.charge_pct <= 0.0

    @property
    def input_w(self) -> float:
        """What the UPS draws from its input: the load plus battery recharge."""
        if self.on_battery:
            return 0.0
        recharge = 0.1 * self.rated_w if self.charge_pct < 100.0 else 0.0
        return self.rated_w * self.load_pct / 100.0 / 0.95 + recharge

    def step(self, dt: float, input_v: float, input_hz: float) -> None:
        """Advance dt seconds with the given input supply (0 V = utility and generator both away)."""
        self.input_v, self.input_hz = input_v, input_hz
        if self.on_battery:
            self.on_battery_s += dt
            # Linear discharge at constant load: a full battery lasts full_runtime_s.
            self.charge_pct = max(0.0, self.charge_pct - 100.0 * dt / self.full_runtime_s)
        else:
            # RFC 1628 upsSecondsOnBattery is zero when not on battery.
            self.on_battery_s = 0.0
            # Recharge to 90 % in ~4 h is typical of VRLA strings; linear is close enough here.
            self.charge_pct = min(100.0, self.charge_pct + 100.0 * dt / 14_400.0)

    def values(self) -> dict[str, Value]:
        """Canonical UPS metrics."""
        runtime = self.charge_pct / 100.0 * self.full_runtime_s
        if self.depleted:
            status, source = "depleted", "none"
        else:
            status = "low" if runtime < 300.0 else "normal"
            source = "battery" if self.on_battery else "normal"
        if self.on_battery:
            batt_v = 46.0 + 5.0 * self.charge_pct / 100.0  # 24 x 12 V blocks under discharge
        else:
            batt_v = 54.6 if self.charge_pct >= 100.0 else 55.2  # float vs boost charge
        out_v = 0.0 if self.depleted else GRID_V
        return {
            "output_source": source,
            "on_battery": self.on_battery,
            "battery_status": status,
            "battery_charge_pct": round(self.charge_pct, 1),
            "runtime_s": round(runtime),
            "seconds_on_battery_s": round(self.on_battery_s),
            "battery_voltage_v": round(batt_v, 1),
            "battery_temp_c": round(self.battery_temp_c, 1),
            "input_voltage_v": round(self.input_v, 1),
            "input_freq_hz": round(self.input_hz, 1),
            "output_voltage_v": out_v,
            "output_freq_hz": 0.0 if self.depleted else GRID_HZ,
            # The nameplate matches the grid it runs on (Taiwan: 60 Hz), not a profile's generic example.
            "input_freq_nominal_hz": GRID_HZ,
            "output_freq_nominal_hz": GRID_HZ,
            "output_voltage_nominal_v": GRID_V,
            "output_load_pct": 0.0 if self.depleted else round(self.load_pct, 1),
            "test_result": self.test_result,
            "battery_replace": False,
            # Status bits of UPSes that expose a bitfield instead of upsOutputSource (APC Modbus).
            "online": not self.on_battery,
            "input_bad": self.on_battery,
            "on_bypass": False,
            "output_current_a": 0.0
            if self.depleted
            else round(self.rated_w * self.load_pct / 100.0 / (3 * GRID_V * POWER_FACTOR), 1),
        }


@dataclass
class GensetModel:
    """A diesel standby generator behind a DSE-style controller."""

    rated_w: float = 150_000.0
    control_mode: str = "auto"
    engine_state: str = "stopped"
    phase_s: float = 0.0  # time in the current engine_state
    rpm: float = 0.0
    coolant_c: float = 40.0  # block heater keeps a standby engine warm
    fuel_pct: float = 85.0
    battery_v: float = 27.4
    run_time_s: float = 0.0
    starts: int = 0
    power_w: float = 0.0
    connected: bool = False  # the ATS has put the load on this set
    mains_failed: bool = False  # the controller's own mains sensing

    @property
    def stable(self) -> bool:
        """Running at rated speed long enough to accept load."""
        return self.engine_state == "running" and self.phase_s >= STABLE_S

    @property
    def load_pct(self) -> float:
        """Output as a percentage of the nameplate rating."""
        return 100.0 * self.power_w / self.rated_w

    def _enter(self, state: str) -> None:
        self.engine_state, self.phase_s = state, 0.0

    def step(self, dt: float, demand: bool, load_w: float) -> None:
        """Advance dt seconds; `demand` = the controller wants the engine running, `load_w` if connected."""
        self.phase_s += dt
        st = self.engine_state
        if st == "stopped" and demand:
            self._enter("pre_start")
        elif st == "pre_start":
            if not demand:
                self._enter("stopped")
            elif self.phase_s >= PRE_START_S:
                self.starts += 1  # counted when the engine fires
                self._enter("warming_up")
        elif st == "warming_up" and self.phase_s >= WARM_UP_S:
            self._enter("running" if demand else "cooling_down")
        elif st == "running" and not demand:
            self._enter("cooling_down")
        elif st == "cooling_down":
            if demand:
                self._enter("running")
            elif self.phase_s >= COOL_DOWN_S:
                self._enter("stopped")
        st = self.engine_state
        if not self.stable:
            self.connected = False
        turning = st in ("warming_up", "running", "cooling_down")
        if turning:
            self.run_time_s += dt
        # Speed: the engine reaches rated rpm ~3 s into warm-up; governor holds it after that.
        if st == "warming_up":
            self.rpm = min(RATED_RPM, RATED_RPM * self.phase_s / 3.0)
        elif turning:
            self.rpm = RATED_RPM
        else:
            self.rpm = 0.0
        target_w = load_w if self.connected else 0.0
        step_w = LOAD_RAMP_W_PER_S * dt
        self.power_w = (
            min(self.power_w + step_w, target_w)
            if target_w > self.power_w
            else max(self.power_w - 4 * step_w, target_w)
        )
        # Coolant: thermostat ~82 °C under load, block heater 40 °C at rest; first-order lag.
        coolant_target = 70.0 + 12.0 * min(1.0, self.load_pct / 50.0) if turning else 40.0
        self.coolant_c += (coolant_target - self.coolant_c) * (1.0 - math.exp(-dt / 300.0))
        # Fuel: a full tank lasts ~8 h at full load; idling burns ~10 % of that.
        if turning:
            burn = (0.1 + 0.9 * self.load_pct / 100.0) * 100.0 / (8 * 3600.0)
            self.fuel_pct = max(0.0, self.fuel_pct - burn * dt)
        if st == "pre_start" and self.phase_s >= PRE_START_S - 1.0:
            self.battery_v = 22.5  # cranking sag
        else:
            self.battery_v = 28.2 if turning else 27.4  # alternator charging vs float charger

    def values(self) -> dict[str, Value]:
        """Canonical genset metrics."""
        excited = self.rpm / RATED_RPM
        volts = round(GRID_V * excited, 1)
        amps = self.power_w / (3 * GRID_V * POWER_FACTOR) if volts > 0 else 0.0
        return {
            "control_mode": self.control_mode,
            "engine_state": self.engine_state,
            "oil_pressure_kpa": round(380.0 * excited),
            "coolant_temp_c": round(self.coolant_c),
            "fuel_level_pct": round(self.fuel_pct, 1),
            "battery_voltage_v": round(self.battery_v, 1),
            "engine_speed_rpm": round(self.rpm),
            "gen_freq_hz": round(GRID_HZ * excited, 1),
            "gen_l1n_voltage_v": volts,
            "gen_l2n_voltage_v": volts,
            "gen_l3n_voltage_v": volts,
            "gen_l1_current_a": round(amps, 1),
            "gen_l2_current_a": round(amps, 1),
            "gen_l3_current_a": round(amps, 1),
            "gen_power_w": round(self.power_w),
            "gen_load_pct": round(self.load_pct, 1),
            "run_time_s": int(self.run_time_s),
            "starts_count": self.starts,
            "gen_l1_power_w": round(self.power_w / 3),
            "gen_l2_power_w": round(self.power_w / 3),
            "gen_l3_power_w": round(self.power_w / 3),
            "oil_temp_c": round(self.coolant_c + (8.0 if excited > 0 else 0.0)),
            "charge_alt_voltage_v": round(self.battery_v if excited > 0 else 0.0, 1),
            "alarm_low_fuel_level": "warning" if self.fuel_pct < 20.0 else "not_active",
            "alarm_fail_to_start": "not_active",
            "alarm_mains_failed": "active_indication" if self.mains_failed else "inactive_indication",
        }
