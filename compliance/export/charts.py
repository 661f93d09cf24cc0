# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Charts as reportlab drawings: daily min/avg/max against ASHRAE bands, and a timeline of test events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import NamedTuple, TypeAlias

from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from compliance.export.pdf import cjk_font
from compliance.export.tables import STATUS_ZH, local_time

Colour: TypeAlias = str | colors.Color  # a hex string such as '#cdebd3', or a reportlab colour
# (low, high, label, colour); None for an open end, drawn to the edge of the plot.
Band = tuple[float | None, float | None, str, Colour]

# ASHRAE TC 9.9, Thermal Guidelines for Data Processing Environments, 4th ed. (2015), the same source as
# the alert pack (alerts/packs/machine-room.yaml): the recommended envelope of all A classes (18-27 °C,
# <= 60 % RH) and the class A1 allowable envelope (15-32 °C, 8-80 % RH). Allowable first: drawn under.
ASHRAE_TEMP_BANDS: list[Band] = [
    (15.0, 32.0, "ASHRAE A1 允許 allowable 15–32 °C", "#fff1c1"),
    (18.0, 27.0, "ASHRAE 建議 recommended 18–27 °C", "#cdebd3"),
]
ASHRAE_RH_BANDS: list[Band] = [
    (8.0, 80.0, "ASHRAE A1 允許 allowable 8–80 %", "#fff1c1"),
    (None, 60.0, "ASHRAE 建議 recommended ≤ 60 %", "#cdebd3"),
]

# Marker colours: the table fills of tables.STATUS_FILL are too pale for a dot on a line.
STATUS_MARK = {"pass": "#2e7d32", "warn": "#f9a825", "fail": "#c62828", "unknown": "#8a8a8a"}
LINES = (  # (field, legend, colour, dashed)
    ("max", "最高 max", "#c62828", True),
    ("avg", "平均 avg", "#1f2933", False),
    ("min", "最低 min", "#1565c0", True),
)
AXIS = colors.HexColor("#52606d")
GRIDLINE = colors.HexColor("#d9dee3")


class DayStats(NamedTuple):
    """One local day of readings: its minimum, mean and maximum."""

    day: date
    min: float
    avg: float
    max: float


def daily_stats(samples: Sequence[tuple[datetime, float]], tz: tzinfo) -> list[DayStats]:
    """Min, mean and max per local day of (aware time, value) samples; NaN and infinities are skipped."""
    days: dict[date, list[float]] = {}
    for when, value in samples:
        if math.isfinite(value):
            days.setdefault(local_time(when, tz).date(), []).append(value)
    return [DayStats(d, min(v), sum(v) / len(v), max(v)) for d, v in sorted(days.items())]


def band_chart(
    series: Sequence[tuple[datetime, float]] | Sequence[DayStats],
    bands: Sequence[Band],
    title: str,
    unit: str,
    *,
    tz: tzinfo | None = None,
    period: tuple[date, date] | None = None,
    width: float = 480,
    height: float = 260,
) -> Drawing:
    """Daily min/avg/max lines over shaded horizontal bands; raw samples need `tz` to find the days."""
    font = cjk_font()
    stats = _as_daily(series, tz)
    first, last = period or ((stats[0].day, stats[-1].day) if stats else (date.min, date.min))
    days = (last - first).days + 1 if stats or period else 0
    if period and days < 1:
        raise ValueError(f"period {first}..{last} ends before it starts")

    d = Drawing(width, height)
    legend = [(label, _colour(colour), "band") for _, _, label, colour in bands]
    legend += [
        (name, colors.HexColor(colour), "dash" if dashed else "line") for _, name, colour, dashed in LINES
    ]
    legend_h = _legend(d, legend, font, 0, width, draw=False)
    left, right, top, bottom = 44.0, width - 10, height - 26, 22 + legend_h
    _title(d, title, font, width, height)
    d.add(String(4, top + 4, unit, fontName=font, fontSize=8, fillColor=AXIS))

    values = [v for s in stats for v in (s.min, s.max)]
    values += [b for low, high, _, _ in bands for b in (low, high) if b is not None]
    lo, hi, step = _nice_range(min(values, default=0.0), max(values, default=1.0))

    def y(v: float) -> float:
        return bottom + (min(max(v, lo), hi) - lo) / (hi - lo) * (top - bottom)

    for low, high, _, colour in bands:
        y0, y1 = y(lo if low is None else low), y(hi if high is None else high)
        d.add(Rect(left, y0, right - left, y1 - y0, fillColor=_colour(colour), strokeColor=None))
    for i in range(round((hi - lo) / step) + 1):  # counted, not summed: no 0.30000000000000004
        tick = lo + i * step
        d.add(Line(left, y(tick), right, y(tick), strokeColor=GRIDLINE, strokeWidth=0.4))
        d.add(String(left - 4, y(tick) - 3, _fmt(tick, step), fontName=font, fontSize=7, textAnchor="end"))

    if not stats:
        d.add(
            String(
                (left + right) / 2,
                (top + bottom) / 2,
                "無資料 / no data",
                fontName=font,
                fontSize=10,
                textAnchor="middle",
            )
        )
    if days:
        slot = (right - left) / days

        def x(day: date) -> float:
            return left + ((day - first).days + 0.5) * slot

        every = max(1, math.ceil(days / 16))  # at most 16 day labels, whatever the period
        for i in range(0, days, every):
            day = first + timedelta(days=i)
            label = day.strftime("%m-%d") if i == 0 or day.day == 1 else str(day.day)
            d.add(String(x(day), bottom - 10, label, fontName=font, fontSize=7, textAnchor="middle"))
        for field, _, colour, dashed in LINES:
            points = [(x(s.day), y(getattr(s, field))) for s in stats if first <= s.day <= last]
            _polyline(
                d, points, [s.day for s in stats if first <= s.day <= last], colors.HexColor(colour), dashed
            )
    d.add(Rect(left, bottom, right - left, top - bottom, fillColor=None, strokeColor=AXIS, strokeWidth=0.6))
    _legend(d, legend, font, 4, width, draw=True)
    return d


def timeline_chart(
    events: Sequence[tuple[datetime, str, str]],
    start: datetime,
    end: datetime,
    title: str,
    *,
    tz: tzinfo | None = None,
    width: float = 480,
) -> Drawing:
    """Events (time, label, status) as markers coloured by status on a time axis, times in `tz` or start's."""
    font = cjk_font()
    zone = tz or start.tzinfo
    if zone is None or end <= start:
        raise ValueError("timeline needs aware start < end")
    left, right = 16.0, width - 16
    span = (end - start).total_seconds()

    def x(when: datetime) -> float:
        return left + (when - start).total_seconds() / span * (right - left)

    inside = sorted((e for e in events if start <= e[0] <= end), key=lambda e: e[0])
    # Labels go up in rows: each in the lowest row where it does not run into the label before it.
    row_ends: list[float] = []
    placed = []
    for when, label, status in inside:
        text = f"{local_time(when, zone).strftime('%m-%d %H:%M')} {label}"
        w = stringWidth(text, font, 7)
        x0 = min(x(when), right - w)
        row = next((i for i, end_x in enumerate(row_ends) if x0 > end_x + 6), len(row_ends))
        if row == len(row_ends):
            row_ends.append(0.0)
        row_ends[row] = x0 + w
        placed.append((x(when), x0, row, text, status))

    statuses = [s for s in STATUS_MARK if any(e[2] == s for e in inside)]
    legend = [(f"{s} {STATUS_ZH[s]}", colors.HexColor(STATUS_MARK[s]), "dot") for s in statuses]
    legend_h = _legend(Drawing(width, 10), legend, font, 0, width, draw=False) if legend else 0.0
    row_h = 11.0
    axis_y = 24 + legend_h
    height = axis_y + 14 + row_h * max(1, len(row_ends)) + 26
    d = Drawing(width, height)
    _title(d, title, font, width, height)

    d.add(Line(left, axis_y, right, axis_y, strokeColor=AXIS, strokeWidth=0.8))
    for tick in _time_ticks(start, end, zone):
        tx = x(tick)
        local = local_time(tick, zone)
        label = local.strftime("%m-%d") if local.time() == time(0) else local.strftime("%H:%M")
        d.add(Line(tx, axis_y - 3, tx, axis_y + 3, strokeColor=AXIS, strokeWidth=0.6))
        d.add(String(tx, axis_y - 12, label, fontName=font, fontSize=7, textAnchor="middle"))
    for mx, x0, row, text, _ in placed:
        ly = axis_y + 14 + row * row_h
        d.add(Line(mx, axis_y, mx, ly - 2, strokeColor=GRIDLINE, strokeWidth=0.5))
        d.add(String(x0, ly, text, fontName=font, fontSize=7))
    for mx, _, _, _, status in placed:  # markers last: on top of the connectors
        fill = colors.HexColor(STATUS_MARK.get(status, STATUS_MARK["unknown"]))
        d.add(Circle(mx, axis_y, 3.5, fillColor=fill, strokeColor=colors.white, strokeWidth=0.6))
    if not placed:
        d.add(
            String(
                width / 2, axis_y + 16, "無事件 / no events", fontName=font, fontSize=9, textAnchor="middle"
            )
        )
    if legend:
        _legend(d, legend, font, 4, width, draw=True)
    return d


def _as_daily(
    series: Sequence[tuple[datetime, float]] | Sequence[DayStats], tz: tzinfo | None
) -> list[DayStats]:
    if all(len(s) == 4 for s in series):  # DayStats, or plain (day, min, avg, max) tuples
        return sorted((DayStats(*s) for s in series), key=lambda s: s.day)
    if tz is None:
        raise ValueError("band_chart of raw samples needs tz: the site's zone decides where a day begins")
    return daily_stats([(s[0], s[1]) for s in series if isinstance(s[0], datetime)], tz)


def _colour(c: Colour) -> colors.Color:
    return colors.HexColor(c) if isinstance(c, str) else c


def _title(d: Drawing, title: str, font: str, width: float, height: float) -> None:
    d.add(String(width / 2, height - 14, title, fontName=font, fontSize=11, textAnchor="middle"))


def _nice_range(lo: float, hi: float) -> tuple[float, float, float]:
    """Axis limits on whole steps of 1, 2 or 5 x 10^k around [lo, hi], about six steps apart."""
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    raw = (hi - lo) / 6
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _fmt(v: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{v:.{decimals}f}"


def _polyline(
    d: Drawing, points: list[tuple[float, float]], days: list[date], colour: colors.Color, dashed: bool
) -> None:
    # A missing day breaks the line: joining across it would draw readings nobody took.
    segments: list[list[tuple[float, float]]] = []
    for i, p in enumerate(points):
        if i == 0 or (days[i] - days[i - 1]).days > 1:
            segments.append([])
        segments[-1].append(p)
    dash = [3, 2] if dashed else None
    for seg in segments:
        if len(seg) == 1:
            d.add(Circle(seg[0][0], seg[0][1], 1.5, fillColor=colour, strokeColor=None))
        else:
            flat = [c for p in seg for c in p]
            d.add(PolyLine(flat, strokeColor=colour, strokeWidth=1.2, strokeDashArray=dash))


def _legend(
    d: Drawing, items: list[tuple[str, colors.Color, str]], font: str, y0: float, width: float, *, draw: bool
) -> float:
    """Lay the legend out in rows from y0 up (drawing it if `draw`); the height it takes."""
    size, row_h, gap, x = 7.0, 11.0, 12.0, 8.0
    rows = 1
    xs = []
    for text, _, _ in items:
        w = 14 + stringWidth(text, font, size)
        if x + w > width - 8 and x > 8:
            rows, x = rows + 1, 8.0
        xs.append((x, rows))
        x += w + gap
    if draw:
        for (text, colour, kind), (x, row) in zip(items, xs, strict=True):
            yy = y0 + (rows - row) * row_h + 2
            if kind == "band":
                d.add(Rect(x, yy - 1, 10, 7, fillColor=colour, strokeColor=AXIS, strokeWidth=0.3))
            elif kind == "dot":
                d.add(Circle(x + 5, yy + 2.5, 3, fillColor=colour, strokeColor=None))
            else:
                dash = [3, 2] if kind == "dash" else None
                d.add(
                    Line(
                        x,
                        yy + 2.5,
                        x + 10,
                        yy + 2.5,
                        strokeColor=colour,
                        strokeWidth=1.2,
                        strokeDashArray=dash,
                    )
                )
            d.add(String(x + 14, yy, text, fontName=font, fontSize=size))
    return rows * row_h + 4


def _time_ticks(start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """Ticks on whole local hours or midnights, at most about eight of them."""
    span_h = (end - start).total_seconds() / 3600
    step_h = next((h for h in (1, 2, 3, 6, 12, 24, 48, 72, 168, 336) if span_h / h <= 8), 720)
    local = local_time(start, tz)
    if step_h < 24:
        first = local.replace(minute=0, second=0, microsecond=0)
        ticks = [first + timedelta(hours=i * step_h) for i in range(int(span_h / step_h) + 2)]
    else:
        day0 = local.date()
        n = int(span_h / 24) + 2
        ticks = [
            datetime.combine(day0 + timedelta(days=i), time(0), tzinfo=tz) for i in range(0, n, step_h // 24)
        ]
    return [t for t in ticks if start <= t <= end]
