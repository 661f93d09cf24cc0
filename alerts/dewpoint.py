"""Dew point from air temperature and relative humidity (Magnus formula, pure)."""

from __future__ import annotations

import math

# Magnus coefficients of Alduchov & Eskridge (1996), "Improved Magnus Form Approximation of Saturation
# Vapor Pressure", J. Appl. Meteor. 35, 601-609: their AERK set (17.625, 243.04 °C, 610.94 Pa) over
# water, fitted for -40..50 °C; a machine room sits well inside that range. The pressure constant
# cancels out of the dew point, so only a and b appear here.
MAGNUS_A = 17.625
MAGNUS_B_C = 243.04
VALID_TEMP_C = (-40.0, 50.0)


def dew_point_c(temp_c: float, rh_pct: float) -> float | None:
    """Dew point in °C, or None where the inputs give none (RH <= 0, or either input not finite).

    RH slightly above 100 % (a sensor at its limit) is taken as 100 %: condensation, dew point = air.
    """
    if not (math.isfinite(temp_c) and math.isfinite(rh_pct)) or rh_pct <= 0.0:
        return None
    rh = min(rh_pct, 100.0)
    gamma = math.log(rh / 100.0) + MAGNUS_A * temp_c / (MAGNUS_B_C + temp_c)
    return MAGNUS_B_C * gamma / (MAGNUS_A - gamma)
