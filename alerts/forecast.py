# ruff: noqa: RUF001, RUF002, RUF003 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""How long is left: a robust trend (Theil–Sen), time to a limit, and the UPS power-chain margin (pure).

Texts come in Traditional Chinese (`zh_TW`) and English (`en`); numbers are formatted here once so every
notification channel says the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Lang = Literal["zh_TW", "en"]
LANGS: tuple[Lang, ...] = ("zh_TW", "en")
Texts = dict[str, str]  # language → text

# Theil–Sen costs n(n-1)/2 slopes; above this many pairs the points are thinned evenly first. 500 pairs
# (32 points) keep one forecast well under a millisecond while resisting up to ~29 % outliers.
MAX_PAIRS = 500
MIN_POINTS = 3

# "Units are in the name" (devices/catalog.yaml): the suffix fixes the unit.
_SUFFIX_UNITS = (
    ("_pct", "%"), ("_kpa", "kPa"), ("_rpm", "rpm"), ("_kwh", "kWh"), ("_hz", "Hz"), ("_c", "°C"),
    ("_v", "V"), ("_a", "A"), ("_w", "W"), ("_s", "s"),
)  # fmt: skip
# What a metric measures, for the Chinese sentence (English uses the unit alone: "+0.8 °C/min").
_QUANTITIES_ZH = (
    ("dew_point", "露點"), ("rh", "濕度"), ("temp", "溫度"), ("charge", "電量"), ("load", "負載"),
    ("fuel", "油位"), ("runtime", "電池剩餘時間"), ("voltage", "電壓"), ("current", "電流"),
    ("power", "功率"), ("freq", "頻率"), ("pressure", "壓力"),
)  # fmt: skip


def unit_of(metric: str) -> str:
    """The unit a metric name carries in its suffix ('' for bools, enums and counts)."""
    return next((u for sfx, u in _SUFFIX_UNITS if metric.endswith(sfx)), "")


def quantity_zh(metric: str) -> str:
    """A short Chinese name of what the metric measures ('數值' when the name says nothing known)."""
    return next((q for word, q in _QUANTITIES_ZH if word in metric), "數值")


def fmt_num(x: float) -> str:
    """A number for people: whole numbers bare, else two decimals at most, small ones two digits."""
    if x == round(x) and abs(x) < 1e15:
        return str(round(x))
    if abs(x) >= 0.1:
        return f"{x:.2f}".rstrip("0").rstrip(".")
    return f"{x:.2g}"


def with_unit(x: float, unit: str) -> str:
    """'27 °C', '45 %', '3' (no unit)."""
    return f"{fmt_num(x)} {unit}" if unit else fmt_num(x)


# ------------------------------------------------------------------------------------------- trend


@dataclass(frozen=True, slots=True)
class Trend:
    """A robust straight line through recent points: slope per second and the fitted level at `t`."""

    slope_per_s: float
    level: float
    t: float
    points: int


def _median(xs: list[float]) -> float:
    xs.sort()
    n = len(xs)
    mid = n // 2
    return xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2.0


def _thin(points: Sequence[tuple[float, float]], max_pairs: int) -> Sequence[tuple[float, float]]:
    n = len(points)
    m = n
    while m > 2 and m * (m - 1) // 2 > max_pairs:
        m -= 1
    if m == n:
        return points
    # Evenly spaced indices, always keeping the newest point (the level is fitted at its time).
    step = (n - 1) / (m - 1)
    return [points[round(i * step)] for i in range(m)]


def theil_sen(
    points: Sequence[tuple[float, float]], *, min_points: int = MIN_POINTS, max_pairs: int = MAX_PAIRS
) -> Trend | None:
    """Theil–Sen fit of (t, value) points, oldest first: the median of pairwise slopes.

    None with fewer than `min_points` points or when all of them share one time. The level is the median
    of value - slope·(t - t_last), i.e. the line's value at the newest time, so one outlier as the last
    reading moves neither the slope nor the level.
    """
    if len(points) < min_points:
        return None
    pts = _thin(points, max_pairs)
    t_last = pts[-1][0]
    rel = [(t - t_last, v) for t, v in pts]
    slopes = [(vj - vi) / (tj - ti) for i, (ti, vi) in enumerate(rel) for tj, vj in rel[i + 1 :] if tj != ti]
    if not slopes:
        return None
    slope = _median(slopes)
    level = _median([v - slope * t for t, v in rel])
    return Trend(slope, level, points[-1][0], len(points))


def time_to_limit_s(trend: Trend, limit: float) -> float | None:
    """Seconds until the fitted line reaches `limit`: 0 when there, None when moving away or flat."""
    gap = limit - trend.level
    if gap == 0:
        return 0.0
    if trend.slope_per_s == 0 or (gap > 0) != (trend.slope_per_s > 0):
        return None
    return gap / trend.slope_per_s


def _eta(seconds: float) -> Texts:
    minutes = seconds / 60.0
    if minutes < 1:
        return {"zh_TW": "不到 1 分鐘內", "en": "in under 1 min"}
    if minutes < 120:
        m = fmt_num(round(minutes))
        return {"zh_TW": f"約 {m} 分鐘後", "en": f"in about {m} min"}
    h = fmt_num(round(minutes / 60.0, 1))
    return {"zh_TW": f"約 {h} 小時後", "en": f"in about {h} h"}


def forecast_text(metric: str, trend: Trend | None, limit: float, op: Literal["above", "below"]) -> Texts:
    """'溫度每分鐘上升 0.8 °C，約 6 分鐘後達 27 °C' / '+0.8 °C/min, 27 °C in about 6 min'.

    `op` says which side of `limit` is bad: past it the text says so instead of a time; moving away from
    it (or flat) the text gives the rate only. No trend (too few points): empty texts.
    """
    if trend is None:
        return {"zh_TW": "", "en": ""}
    unit = unit_of(metric)
    per_min = trend.slope_per_s * 60.0
    q = quantity_zh(metric)
    lim = with_unit(limit, unit)
    if abs(per_min) < 1e-9:
        zh, en = f"{q}持平", f"steady at {with_unit(trend.level, unit)}"
    else:
        word = "上升" if per_min > 0 else "下降"
        zh = f"{q}每分鐘{word} {with_unit(abs(per_min), unit)}"
        en = f"{'+' if per_min > 0 else '-'}{with_unit(abs(per_min), unit)}/min"
    past = trend.level > limit if op == "above" else trend.level < limit
    if past:
        side = "高於" if op == "above" else "低於"
        return {"zh_TW": f"{zh}，已{side} {lim}", "en": f"{en}, already past {lim}"}
    eta = time_to_limit_s(trend, limit)
    if eta is None:
        return {"zh_TW": zh, "en": en}
    when = _eta(eta)
    return {"zh_TW": f"{zh}，{when['zh_TW']}達 {lim}", "en": f"{en}, {lim} {when['en']}"}


# ------------------------------------------------------------------------------------- power chain


@dataclass(frozen=True, slots=True)
class GensetView:
    """The latest good, fresh readings of a generator (None: no such reading)."""

    device: str
    engine_state: str | None = None
    control_mode: str | None = None
    gen_power_w: float | None = None
    gen_load_pct: float | None = None

    @property
    def carrying_load(self) -> bool:
        """Running and delivering power (gen_power_w > 0, or gen_load_pct > 0 where power is unknown)."""
        if self.engine_state != "running":
            return False
        if self.gen_power_w is not None:
            return self.gen_power_w > 0
        return self.gen_load_pct is not None and self.gen_load_pct > 0


MarginCase = Literal["carrying", "margin", "shortfall", "not_auto", "no_genset", "runtime_unknown"]


@dataclass(frozen=True, slots=True)
class PowerMargin:
    """Battery runtime against the generator's start-and-transfer time, as numbers and as texts."""

    case: MarginCase
    margin_s: float | None
    text: Texts


def _min(seconds: float) -> str:
    return fmt_num(round(seconds / 60.0, 1))


def power_chain_margin(runtime_s: float | None, transfer_s: float, genset: GensetView | None) -> PowerMargin:
    """'電池剩餘 14 分鐘，發電機約 0.5 分鐘內接手，餘裕 13.5 分鐘' / 'runtime 14 min vs generator
    start-and-transfer 30 s: margin 13.5 min', or why there is no margin to give.

    A generator carrying the load needs no margin. One whose control mode is known and not `auto`, and
    that is not running, will not start by itself. Otherwise (auto, or mode unknown) the margin is
    runtime − transfer time; negative is a shortfall.
    """
    rt_zh = f"電池剩餘 {_min(runtime_s)} 分鐘" if runtime_s is not None else "電池剩餘時間不明"
    rt_en = f"runtime {_min(runtime_s)} min" if runtime_s is not None else "runtime unknown"
    tr_zh, tr_en = _min(transfer_s), fmt_num(transfer_s)
    if genset is not None and genset.carrying_load:
        return PowerMargin(
            "carrying",
            None,
            {
                "zh_TW": f"{rt_zh}，發電機已在供電",
                "en": f"{rt_en}; generator {genset.device} is carrying the load",
            },
        )
    if genset is None:
        return PowerMargin(
            "no_genset",
            None,
            {
                "zh_TW": f"{rt_zh}；無發電機資料（啟動並切換約需 {tr_zh} 分鐘）",
                "en": f"{rt_en}; no generator reading (start-and-transfer {tr_en} s)",
            },
        )
    mode = genset.control_mode
    if mode is not None and mode != "auto" and genset.engine_state != "running":
        return PowerMargin(
            "not_auto",
            None,
            {
                "zh_TW": f"{rt_zh}；發電機不在自動模式（{mode}），不會自行啟動",
                "en": f"{rt_en}; generator {genset.device} is in {mode} mode, not auto: "
                "it will not start by itself",
            },
        )
    if runtime_s is None:
        return PowerMargin(
            "runtime_unknown",
            None,
            {
                "zh_TW": f"{rt_zh}；發電機啟動並切換約需 {tr_zh} 分鐘",
                "en": f"{rt_en} vs generator start-and-transfer {tr_en} s",
            },
        )
    margin = runtime_s - transfer_s
    head_en = f"{rt_en} vs generator start-and-transfer {tr_en} s"
    if margin >= 0:
        return PowerMargin(
            "margin",
            margin,
            {
                "zh_TW": f"{rt_zh}，發電機約 {tr_zh} 分鐘內接手，餘裕 {_min(margin)} 分鐘",
                "en": f"{head_en}: margin {_min(margin)} min",
            },
        )
    return PowerMargin(
        "shortfall",
        margin,
        {
            "zh_TW": f"{rt_zh}，發電機約需 {tr_zh} 分鐘才能接手，不足 {_min(-margin)} 分鐘",
            "en": f"{head_en}: short by {_min(-margin)} min",
        },
    )
