"""Simulated cooling: CRAC units and room air temperature / humidity at the sensors (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from devices.reading import Value

# Room heating when cooling is lost: first-order approach to a ceiling. Initial slope near the failed
# unit ~0.8 °C/min (a few kW/rack with the air still mixing), further away ~0.3 °C/min because the
# remaining units and the room's thermal mass absorb part of it.
NEAR_RISE_C = 20.0
NEAR_RATE_C_PER_S = 0.8 / 60.0
FAR_RISE_C = 8.0
FAR_RATE_C_PER_S = 0.3 / 60.0
RECOVERY_TAU_S = 600.0  # restored cooling pulls the room back with a ~10 min time constant


def dew_point_c(temp_c: float, rh_pct: float) -> float:
    """Magnus formula (Alduchov-Eskridge constants), good to ±0.35 °C in room conditions."""
    a, b = 17.625, 243.04
    g = math.log(max(rh_pct, 0.1) / 100.0) + a * temp_c / (b + temp_c)
    return b * g / (a - g)


def rh_from_dew_point(temp_c: float, dew_c: float) -> float:
    """Relative humidity of air at temp_c holding the moisture of dew point dew_c."""
    a, b = 17.625, 243.04
    return 100.0 * math.exp(a * dew_c / (b + dew_c) - a * temp_c / (b + temp_c))


@dataclass
class Heating:
    """Temperature excess over the baseline of one air point, relaxing towards a target."""

    excess_c: float = 0.0

    def step(self, dt: float, rise_c: float, rate_c_per_s: float) -> None:
        """Move towards rise_c (0 = recover); the initial slope while heating is rate_c_per_s."""
        tau = rise_c / rate_c_per_s if rise_c > self.excess_c and rate_c_per_s > 0 else RECOVERY_TAU_S
        self.excess_c += (rise_c - self.excess_c) * (1.0 - math.exp(-dt / tau))


@dataclass
class EnvModel:
    """One T/RH sensor; the moisture content (dew point) stays constant while the air warms."""

    base_c: float
    base_rh: float = 45.0
    heat: Heating = field(default_factory=Heating)
    noise_c: float = 0.0
    noise_rh: float = 0.0

    def __post_init__(self) -> None:
        self._dew = dew_point_c(self.base_c, self.base_rh)

    @property
    def temp_c(self) -> float:
        """True air temperature at the sensor (without measurement noise)."""
        return self.base_c + self.heat.excess_c

    def values(self) -> dict[str, Value]:
        """Canonical env metrics."""
        t = self.temp_c + self.noise_c
        rh = min(100.0, max(0.0, rh_from_dew_point(self.temp_c, self._dew) + self.noise_rh))
        return {
            "temp_c": round(t, 1),
            "rh_pct": round(rh, 1),
            "dew_point_c": round(dew_point_c(t, rh), 1),
            # Extra probes on multi-probe monitors (Geist): rack top and bottom a little apart.
            "probe2_temp_c": round(t + 1.5, 1),
            "probe3_temp_c": round(t - 0.5, 1),
        }


@dataclass
class CracModel:
    """One CRAC unit in return-air control."""

    failed: bool = False
    setpoint_c: float = 24.0
    supply_base_c: float = 16.0
    capacity_pct: float = 55.0
    return_rh: float = 45.0
    heat: Heating = field(default_factory=Heating)
    supply_excess_c: float = 0.0
    other_failed: bool = False  # a neighbour failed: this unit runs flat out
    noise_c: float = 0.0

    def __post_init__(self) -> None:
        self._dew = dew_point_c(self.setpoint_c, self.return_rh)

    def step(self, dt: float) -> None:
        """Supply air drifts up to return air while the compressor is off (fan stopped too)."""
        ret = self.setpoint_c + self.heat.excess_c
        target = ret - self.supply_base_c if self.failed else 0.0
        tau = 120.0  # coil and ducting thermal mass
        self.supply_excess_c += (target - self.supply_excess_c) * (1.0 - math.exp(-dt / tau))

    def values(self) -> dict[str, Value]:
        """Canonical CRAC metrics."""
        ret = self.setpoint_c + self.heat.excess_c
        if self.failed:
            state, status, cap = "off", "critical", 0.0
        else:
            state, status = "on", "normal"
            cap = 100.0 if self.other_failed else self.capacity_pct
        return {
            "unit_state": state,
            "status": status,
            "return_air_temp_c": round(ret + self.noise_c, 1),
            "supply_air_temp_c": round(self.supply_base_c + self.supply_excess_c + self.noise_c, 1),
            "return_rh_pct": round(rh_from_dew_point(ret, self._dew), 1),
            "temp_setpoint_c": self.setpoint_c,
            "cooling_capacity_pct": cap,
            # Vendor-specific extras (Liebert control loop, InRow rack inlet / output).
            "control_temp_c": round(ret + self.noise_c, 1),
            "unit_control": "standby" if self.failed else "on",
            "fan_capacity_pct": 0.0 if self.failed else max(40.0, cap),
            "cooling_output_kw": round(30.0 * cap / 100.0, 1),
            "rack_inlet_temp_c": round(self.supply_base_c + self.supply_excess_c + 2.0 + self.noise_c, 1),
        }
