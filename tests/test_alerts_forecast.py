# ruff: noqa: RUF001, RUF002 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Time-to-limit forecasts (Theil–Sen), the UPS power-chain margin and the dew point: pure arithmetic."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.dewpoint import dew_point_c
from alerts.forecast import (
    GensetView,
    Trend,
    fmt_num,
    forecast_text,
    power_chain_margin,
    theil_sen,
    time_to_limit_s,
    unit_of,
)


def line(slope_per_min: float, start: float, n: int = 10, step_s: float = 60.0) -> list[tuple[float, float]]:
    return [(1_700_000_000.0 + i * step_s, start + slope_per_min * i * step_s / 60.0) for i in range(n)]


def test_theil_sen_recovers_a_known_slope_and_level() -> None:
    pts = line(0.8, 20.0)
    trend = theil_sen(pts)
    assert trend is not None
    assert trend.slope_per_s * 60 == pytest.approx(0.8)
    assert trend.level == pytest.approx(20.0 + 0.8 * 9)
    assert trend.t == pts[-1][0]


def test_theil_sen_resists_an_outlier_where_least_squares_would_not() -> None:
    pts = line(0.8, 20.0, n=12)
    spiked = [*pts[:5], (pts[5][0], 85.0), *pts[6:]]  # one sensor glitch in the middle
    trend = theil_sen(spiked)
    assert trend is not None
    assert trend.slope_per_s * 60 == pytest.approx(0.8)
    # The same glitch as the newest reading moves neither slope nor level.
    last = [*pts[:-1], (pts[-1][0], -40.0)]
    trend = theil_sen(last)
    assert trend is not None
    assert trend.slope_per_s * 60 == pytest.approx(0.8)
    assert trend.level == pytest.approx(pts[-1][1])


def test_theil_sen_needs_points_spread_in_time() -> None:
    assert theil_sen(line(1.0, 0.0, n=2)) is None
    assert theil_sen([(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]) is None


def test_theil_sen_thins_long_windows_to_bounded_pairs() -> None:
    trend = theil_sen(line(-0.25, 30.0, n=400, step_s=5.0), max_pairs=100)
    assert trend is not None
    assert trend.slope_per_s * 60 == pytest.approx(-0.25)
    assert trend.points == 400


@given(
    slope=st.floats(-5, 5).filter(lambda s: abs(s) > 1e-3),
    start=st.floats(-50, 50),
    gaps=st.lists(st.floats(1, 120), min_size=4, max_size=40),
    outlier=st.floats(-1000, 1000),
    where=st.integers(0, 100),
)
def test_theil_sen_property_one_outlier_never_moves_the_slope(slope, start, gaps, outlier, where) -> None:
    t = 0.0
    pts = []
    for g in gaps:
        t += g
        pts.append((t, start + slope * t / 60.0))
    pts.append((t + 10.0, start + slope * (t + 10.0) / 60.0))
    i = where % len(pts)
    clean = theil_sen(pts)
    pts[i] = (pts[i][0], outlier)
    dirty = theil_sen(pts)
    assert clean is not None
    assert dirty is not None
    assert clean.slope_per_s * 60 == pytest.approx(slope, rel=1e-6, abs=1e-9)
    # Five or more points: the median of pairwise slopes stays within the clean slopes' range (= slope).
    if len(pts) >= 5:
        assert dirty.slope_per_s * 60 == pytest.approx(slope, rel=1e-6, abs=1e-9)


def test_time_to_limit() -> None:
    up = Trend(slope_per_s=0.8 / 60, level=22.2, t=0.0, points=10)
    assert time_to_limit_s(up, 27.0) == pytest.approx(360.0)
    assert time_to_limit_s(up, 20.0) is None  # moving away
    assert time_to_limit_s(Trend(0.0, 22.0, 0.0, 5), 27.0) is None  # flat
    assert time_to_limit_s(up, 22.2) == 0.0


def test_forecast_text_matches_the_issue_example() -> None:
    trend = Trend(slope_per_s=0.8 / 60, level=22.2, t=0.0, points=10)
    assert forecast_text("temp_c", trend, 27.0, "above") == {
        "zh_TW": "溫度每分鐘上升 0.8 °C，約 6 分鐘後達 27 °C",
        "en": "+0.8 °C/min, 27 °C in about 6 min",
    }


def test_forecast_text_other_cases() -> None:
    falling = Trend(slope_per_s=-0.5 / 60, level=50.0, t=0.0, points=10)
    assert forecast_text("rh_pct", falling, 40.0, "below") == {
        "zh_TW": "濕度每分鐘下降 0.5 %，約 20 分鐘後達 40 %",
        "en": "-0.5 %/min, 40 % in about 20 min",
    }
    # Moving away from the limit: the rate only.
    assert forecast_text("rh_pct", falling, 60.0, "above") == {
        "zh_TW": "濕度每分鐘下降 0.5 %",
        "en": "-0.5 %/min",
    }
    # Already beyond it.
    assert (
        forecast_text("temp_c", Trend(0.01, 28.0, 0.0, 5), 27.0, "above")["en"]
        == "+0.6 °C/min, already past 27 °C"
    )
    assert forecast_text("temp_c", Trend(0.01, 28.0, 0.0, 5), 27.0, "above")["zh_TW"].endswith("已高於 27 °C")
    # Flat, far, soon, no trend.
    assert forecast_text("temp_c", Trend(0.0, 24.0, 0.0, 5), 27.0, "above")["en"] == "steady at 24 °C"
    slow = forecast_text("temp_c", Trend(0.01 / 60, 24.0, 0.0, 5), 27.0, "above")
    assert slow["en"] == "+0.01 °C/min, 27 °C in about 5 h"
    assert slow["zh_TW"] == "溫度每分鐘上升 0.01 °C，約 5 小時後達 27 °C"
    soon = forecast_text("temp_c", Trend(2.0 / 60, 26.5, 0.0, 5), 27.0, "above")
    assert soon["en"] == "+2 °C/min, 27 °C in under 1 min"
    assert forecast_text("temp_c", None, 27.0, "above") == {"zh_TW": "", "en": ""}


def test_units_and_numbers() -> None:
    assert [unit_of(m) for m in ("temp_c", "rh_pct", "runtime_s", "gen_power_w", "on_battery")] == [
        "°C",
        "%",
        "s",
        "W",
        "",
    ]
    assert [fmt_num(x) for x in (27.0, 0.8, 13.456, 0.05, -3.0)] == ["27", "0.8", "13.46", "0.05", "-3"]


# ------------------------------------------------------------------------------------- power chain


def test_power_chain_margin_generator_in_auto_not_yet_running() -> None:
    gen = GensetView("gen-1", engine_state="stopped", control_mode="auto", gen_power_w=0.0)
    m = power_chain_margin(840.0, 30.0, gen)
    assert (m.case, m.margin_s) == ("margin", 810.0)
    assert m.text == {
        "zh_TW": "電池剩餘 14 分鐘，發電機約 0.5 分鐘內接手，餘裕 13.5 分鐘",
        "en": "runtime 14 min vs generator start-and-transfer 30 s: margin 13.5 min",
    }


def test_power_chain_margin_other_cases() -> None:
    running = GensetView("gen-1", engine_state="running", control_mode="auto", gen_power_w=42_000.0)
    m = power_chain_margin(840.0, 30.0, running)
    assert m.case == "carrying"
    assert m.text["en"] == "runtime 14 min; generator gen-1 is carrying the load"
    # Running without load (warming up, not transferred yet) still needs the margin.
    warming = GensetView("gen-1", engine_state="running", control_mode="auto", gen_power_w=0.0)
    assert power_chain_margin(840.0, 30.0, warming).case == "margin"
    # Load known only in %.
    assert GensetView("g", engine_state="running", gen_load_pct=35.0).carrying_load
    short = power_chain_margin(18.0, 30.0, GensetView("gen-1", "stopped", "auto"))
    assert (short.case, short.margin_s) == ("shortfall", -12.0)
    assert short.text["en"] == "runtime 0.3 min vs generator start-and-transfer 30 s: short by 0.2 min"
    manual = power_chain_margin(840.0, 30.0, GensetView("gen-1", "stopped", "manual"))
    assert manual.case == "not_auto"
    assert "不會自行啟動" in manual.text["zh_TW"]
    assert "manual mode, not auto" in manual.text["en"]
    none = power_chain_margin(840.0, 30.0, None)
    assert none.case == "no_genset"
    assert none.text["en"] == "runtime 14 min; no generator reading (start-and-transfer 30 s)"
    unknown = power_chain_margin(None, 30.0, GensetView("gen-1", "stopped", "auto"))
    assert unknown.case == "runtime_unknown"
    assert unknown.text["zh_TW"].startswith("電池剩餘時間不明")


# ---------------------------------------------------------------------------------------- dew point


def test_dew_point_known_values() -> None:
    # Magnus with Alduchov & Eskridge (1996) constants; 25 °C / 60 % is 16.7 °C on any psychrometric chart.
    assert dew_point_c(25.0, 60.0) == pytest.approx(16.70, abs=0.01)
    assert dew_point_c(20.0, 100.0) == pytest.approx(20.0)
    assert dew_point_c(0.0, 50.0) == pytest.approx(-9.20, abs=0.01)
    assert dew_point_c(20.0, 100.4) == pytest.approx(20.0)  # a sensor at its limit
    assert dew_point_c(25.0, 0.0) is None
    assert dew_point_c(math.nan, 50.0) is None


@given(st.floats(-40, 50), st.floats(1, 100))
def test_dew_point_never_above_air_temperature(temp, rh) -> None:
    dp = dew_point_c(temp, rh)
    assert dp is not None
    assert dp <= temp + 1e-9
