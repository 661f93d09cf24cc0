# ruff: noqa: S608 - the statements are fixed text; every value in them is a bound $parameter.
"""ASHRAE TC 9.9 thermal envelopes and the share of each room-month spent inside them (CC-16000 (三)).

The envelopes are pure data (`Envelope`, `ENVELOPES`, `envelope()`), `within()` is the pure point test.
`envelope_stats()` and `daily_profile()` ask InfluxDB for aggregates only (count/min/mean/max with WHERE
conditions, GROUP BY room): half a year of 1-minute samples never leaves the database. They take any
client with `query`/`query_each` (`compliance.influxql.InfluxQL`) and import no I/O library, so the pure
modules (compliance.telemetry) may import this one. Every value in a statement is a bound $parameter;
the identifiers are fixed.

Time share. Every env sensor is polled at a fixed interval, so a sample stands for the same length of
time as any other of that sensor and "share of time inside" is `count(inside) / count(all)` over the
room-month. A room with several sensors gets the share over all its sensors' samples (sensor-time).
Samples that are missing (a failed poll writes no `temp_c`, docs/influx-schema.md) count neither way.

Dew point, exactly. Sensors write `temp_c` and `rh_pct`; only some also write `dew_point_c`, computed
with their own constants. So the dew-point limits are judged for every sample from `temp_c` and
`rh_pct` with the Magnus formula of the alerts engine, DP = b·g/(a-g) with g = ln(RH/100) + a·T/(b+T),
never from `dew_point_c`. InfluxQL evaluates no function in WHERE (1.x silently matches nothing), so a
subquery computes g per sample with ln() and the outer query counts with a WHERE on g: DP rises with
g, so DP <= D exactly when g <= a·D/(b+D). No approximation beyond the formula's own (±0.35 °C against
the psychrometric tables): the database's verdict is `within()`'s. InfluxDB 1.6 takes about 0.5 s per
humidity count over 134 000 samples, no slower than the alternative measured (an RH limit polynomial
in temp_c in a plain WHERE) and far faster than temperature bands with an RH limit each.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any, Protocol
from zoneinfo import ZoneInfo

# Magnus coefficients of Alduchov & Eskridge (1996) over water, as in alerts/dewpoint.py. That module
# belongs to the alerts process, which compliance must not import (siblings meet on the bus), and the
# copy in devices/sim/physics_cooling.py is the simulator's: this is the third, kept identical.
MAGNUS_A = 17.625
MAGNUS_B_C = 243.04


@dataclass(frozen=True, slots=True)
class Envelope:
    """A thermal envelope: dry-bulb °C, dew point °C and RH % bounds (None: no bound of that kind)."""

    name: str
    temp_min: float
    temp_max: float
    dp_min: float | None
    dp_max: float | None
    rh_min: float | None
    rh_max: float | None


# ASHRAE TC 9.9, Thermal Guidelines for Data Processing Environments, 4th ed. (2015), table 2.1: the
# recommended envelope and the allowable classes A1-A4 (all four share the -12 °C DP / 8 % RH floor).
RECOMMENDED = Envelope("recommended", 18.0, 27.0, -9.0, 15.0, None, 60.0)
A1 = Envelope("A1", 15.0, 32.0, -12.0, 17.0, 8.0, 80.0)
A2 = Envelope("A2", 10.0, 35.0, -12.0, 21.0, 8.0, 80.0)
A3 = Envelope("A3", 5.0, 40.0, -12.0, 24.0, 8.0, 85.0)
A4 = Envelope("A4", 5.0, 45.0, -12.0, 24.0, 8.0, 90.0)
ENVELOPES: Mapping[str, Envelope] = MappingProxyType({e.name: e for e in (RECOMMENDED, A1, A2, A3, A4)})


def envelope(name: str, rh_max_pct: float | None = None) -> Envelope:
    """The envelope called `name`; `rh_max_pct` replaces the recommended RH ceiling (some read 70 %)."""
    try:
        found = ENVELOPES[name]
    except KeyError:
        raise ValueError(f"unknown envelope {name!r}; known: {', '.join(ENVELOPES)}") from None
    if rh_max_pct is not None and name == RECOMMENDED.name:
        return replace(found, rh_max=rh_max_pct)
    return found


def dew_point_c(temp_c: float, rh_pct: float) -> float | None:
    """Magnus dew point in °C; None where there is none (RH <= 0, or an input not finite)."""
    if not (math.isfinite(temp_c) and math.isfinite(rh_pct)) or rh_pct <= 0.0:
        return None
    gamma = math.log(min(rh_pct, 100.0) / 100.0) + MAGNUS_A * temp_c / (MAGNUS_B_C + temp_c)
    return MAGNUS_B_C * gamma / (MAGNUS_A - gamma)


def rh_at_dew_point(temp_c: float, dew_point: float) -> float:
    """The RH % at which air of `temp_c` has dew point `dew_point` (Magnus inverse; > 100 if DP > T)."""
    return 100.0 * math.exp(
        MAGNUS_A * dew_point / (MAGNUS_B_C + dew_point) - MAGNUS_A * temp_c / (MAGNUS_B_C + temp_c)
    )


def temp_within(env: Envelope, temp_c: float) -> bool:
    """The dry bulb is inside the envelope's temperature range (bounds included)."""
    return env.temp_min <= temp_c <= env.temp_max


def humidity_within(env: Envelope, temp_c: float, rh_pct: float, dew_point: float | None = None) -> bool:
    """RH and dew point (the given one, else computed from temp and RH) are inside the envelope."""
    dp = dew_point if dew_point is not None else dew_point_c(temp_c, rh_pct)
    return dp is not None and _rh_ok(env, rh_pct) and _dp_ok(env, dp)


def within(env: Envelope, temp_c: float | None, rh_pct: float | None, dew_point: float | None = None) -> bool:
    """The sample is inside the envelope in everything it tells (None: not measured, not judged).

    The dew point is the sensor's own where given, else computed from temp and RH when both are there.
    A sample with nothing to judge is not inside: there is no evidence that it was.
    """
    if temp_c is None and rh_pct is None and dew_point is None:
        return False
    if dew_point is None and temp_c is not None and rh_pct is not None:
        dew_point = dew_point_c(temp_c, rh_pct)
    return (
        (temp_c is None or temp_within(env, temp_c))
        and (rh_pct is None or _rh_ok(env, rh_pct))
        and (dew_point is None or _dp_ok(env, dew_point))
    )


def _rh_ok(env: Envelope, rh_pct: float) -> bool:
    return (env.rh_min is None or rh_pct >= env.rh_min) and (env.rh_max is None or rh_pct <= env.rh_max)


def _dp_ok(env: Envelope, dp: float) -> bool:
    return (env.dp_min is None or dp >= env.dp_min) and (env.dp_max is None or dp <= env.dp_max)


@dataclass(frozen=True, slots=True)
class EnvelopeShare:
    """Share (0..1) of a room-month's samples inside one envelope; None where there were no samples."""

    envelope: str
    temp: float | None
    humidity: float | None
    both: float | None


@dataclass(frozen=True, slots=True)
class EnvelopeMonth:
    """One room in one calendar month (site time zone): statistics and the share inside each envelope.

    `samples` counts temp_c samples (the temperature share's denominator); `humidity_samples` the
    samples with both temp_c and rh_pct (the humidity and both shares' denominator); the RH statistics
    are over every rh_pct sample.
    """

    room: str
    month: date
    start: datetime
    end: datetime
    samples: int
    humidity_samples: int
    temp_min: float | None
    temp_avg: float | None
    temp_max: float | None
    rh_min: float | None
    rh_avg: float | None
    rh_max: float | None
    shares: tuple[EnvelopeShare, ...]

    def share(self, name: str) -> EnvelopeShare:
        """The share of the envelope called `name`."""
        for s in self.shares:
            if s.envelope == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class DayProfile:
    """One room on one local day: min/avg/max temperature and RH and the number of temp samples."""

    room: str
    day: date
    samples: int
    temp_min: float | None
    temp_avg: float | None
    temp_max: float | None
    rh_min: float | None
    rh_avg: float | None
    rh_max: float | None


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _aware(ts: date | datetime, zone: ZoneInfo) -> datetime:
    """A datetime as given (it must be aware), a date as its local midnight."""
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError(f"naive datetime {ts.isoformat()}: give a time zone")
        return ts
    return datetime.combine(ts, time(0), tzinfo=zone)


def month_windows(
    start: date | datetime, end: date | datetime, tz: str | ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """(first day, window start, window end) of each local calendar month meeting [start, end).

    A month is [first day 00:00 local, first of the next month 00:00 local), clipped to [start, end).
    """
    zone = _zone(tz)
    lo, hi = _aware(start, zone), _aware(end, zone)
    first = lo.astimezone(zone).date().replace(day=1)
    out: list[tuple[date, datetime, datetime]] = []
    while True:
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        m_lo = datetime.combine(first, time(0), tzinfo=zone)
        m_hi = datetime.combine(nxt, time(0), tzinfo=zone)
        if m_lo >= hi:
            return out
        w_lo, w_hi = max(m_lo, lo.astimezone(zone)), min(m_hi, hi.astimezone(zone))
        if w_lo < w_hi:
            out.append((first, w_lo, w_hi))
        first = nxt


class SeriesLike(Protocol):
    """What the queries read of a result series (compliance.influxql.Series)."""

    @property
    def tags(self) -> Mapping[str, str]:
        """GROUP BY tags."""
        ...

    def rows(self) -> Iterator[dict[str, Any]]:
        """Each row as {column: value}, `time` as an aware datetime."""
        ...


class QueryClient(Protocol):
    """An InfluxQL client (compliance.influxql.InfluxQL): statements with bound $parameters."""

    async def query(self, q: str, params: Mapping[str, Any] | None = None) -> Sequence[SeriesLike]:
        """The series of one statement."""
        ...

    async def query_each(
        self, statements: Sequence[str], params: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[SeriesLike]]:
        """The series of each statement, sent in one request."""
        ...


# The subquery's computed column; no env metric has that name.
GAMMA = '"gamma"'
SCOPE = '"site" = $site AND time >= $start AND time < $end'
STATS = (
    'SELECT count("temp_c") AS temp_n, min("temp_c") AS temp_min, mean("temp_c") AS temp_avg, '
    'max("temp_c") AS temp_max, count("rh_pct") AS rh_n, min("rh_pct") AS rh_min, mean("rh_pct") AS rh_avg, '
    f'max("rh_pct") AS rh_max FROM "env" WHERE {SCOPE} GROUP BY "room"'
)
# Samples with both values: the denominator of the humidity shares.
PAIRED = f'SELECT count("rh_pct") AS n FROM "env" WHERE {SCOPE} AND "temp_c" > -273.15 GROUP BY "room"'
# Each sample's temp_c, rh_pct and g = ln(RH/100) + a·T/(b+T) (null unless it has both), per room.
WITH_GAMMA = (
    f'(SELECT "temp_c", "rh_pct", ln("rh_pct" / 100) + {MAGNUS_A!r} * "temp_c" / ({MAGNUS_B_C!r} + "temp_c") '
    f'AS {GAMMA} FROM "env" WHERE {SCOPE} GROUP BY "room")'
)
DAILY = (
    'SELECT count("temp_c") AS n, min("temp_c") AS temp_min, mean("temp_c") AS temp_avg, '
    'max("temp_c") AS temp_max, min("rh_pct") AS rh_min, mean("rh_pct") AS rh_avg, max("rh_pct") AS rh_max '
    'FROM "env" WHERE {scope} GROUP BY "room", time(1d) fill(none) tz($tz)'
)


def gamma_of_dew_point(dew_point: float) -> float:
    """Magnus g of a dew point: a sample's dew point is <= D exactly when its g is <= this."""
    return MAGNUS_A * dew_point / (MAGNUS_B_C + dew_point)


def envelope_params(i: int, env: Envelope) -> dict[str, float]:
    """The bound parameters of envelope number `i`'s statements: its bounds, dew points as g."""
    bounds: dict[str, float | None] = {
        "t_lo": env.temp_min,
        "t_hi": env.temp_max,
        "rh_lo": env.rh_min,
        "rh_hi": env.rh_max,
        "g_lo": None if env.dp_min is None else gamma_of_dew_point(env.dp_min),
        "g_hi": None if env.dp_max is None else gamma_of_dew_point(env.dp_max),
    }
    return {f"e{i}_{k}": float(v) for k, v in bounds.items() if v is not None}


def temp_condition(i: int) -> str:
    """Envelope `i`'s dry-bulb range as an InfluxQL condition."""
    return f'("temp_c" >= $e{i}_t_lo AND "temp_c" <= $e{i}_t_hi)'


def humidity_condition(i: int, env: Envelope) -> str:
    """Envelope `i`'s RH and dew-point bounds as an InfluxQL condition on rh_pct and g."""
    # RH <= 0 has no dew point (ln gives -inf or NaN there: said here rather than relied on).
    parts = ['"rh_pct" > 0']
    if env.rh_min is not None:
        parts.append(f'"rh_pct" >= $e{i}_rh_lo')
    if env.rh_max is not None:
        parts.append(f'"rh_pct" <= $e{i}_rh_hi')
    if env.dp_min is not None:
        parts.append(f"{GAMMA} >= $e{i}_g_lo")
    if env.dp_max is not None:
        parts.append(f"{GAMMA} <= $e{i}_g_hi")
    return "(" + " AND ".join(parts) + ")"


def share_statements(i: int, env: Envelope) -> list[str]:
    """Per room: samples inside envelope `i`'s temperature, humidity, and both (three statements)."""
    temp, hum = temp_condition(i), humidity_condition(i, env)
    # The outer queries repeat the time range: InfluxDB 3 prunes by the outer one (its docs' advice).
    window = "time >= $start AND time < $end"
    return [
        f'SELECT count("temp_c") AS n FROM "env" WHERE {SCOPE} AND {temp} GROUP BY "room"',
        f'SELECT count({GAMMA}) AS n FROM {WITH_GAMMA} WHERE {window} AND {hum} GROUP BY "room"',
        f'SELECT count({GAMMA}) AS n FROM {WITH_GAMMA} WHERE {window} AND {temp} AND {hum} GROUP BY "room"',
    ]


def _by_room(series: Sequence[SeriesLike]) -> dict[str, dict[str, Any]]:
    """{room: first row} of a GROUP BY room aggregate."""
    return {s.tags.get("room", ""): next(s.rows(), {}) for s in series}


def _f(row: Mapping[str, Any], key: str) -> float | None:
    v = row.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _n(row: Mapping[str, Any] | None, key: str = "n") -> int:
    v = (row or {}).get(key)
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


def _ratio(inside: int, total: int) -> float | None:
    return inside / total if total else None


async def envelope_stats(
    client: QueryClient,
    site: str,
    start: date | datetime,
    end: date | datetime,
    tz: str | ZoneInfo,
    envelopes: Sequence[Envelope],
) -> list[EnvelopeMonth]:
    """Per room and local calendar month of [start, end): shares inside each envelope and statistics.

    One request per month, aggregates only: the statistics, then three counts per envelope (see the
    module docstring). Ordered by month, then room; a month without samples gives no rows.
    """
    statements = [STATS, PAIRED] + [s for i, e in enumerate(envelopes) for s in share_statements(i, e)]
    bounds = {k: v for i, e in enumerate(envelopes) for k, v in envelope_params(i, e).items()}
    out: list[EnvelopeMonth] = []
    for month, lo, hi in month_windows(start, end, tz):
        stats, paired, *shares_of = await client.query_each(
            statements, {"site": site, "start": lo, "end": hi, **bounds}
        )
        rows, pairs = _by_room(stats), _by_room(paired)
        counts = [_by_room(series) for series in shares_of]
        for room in sorted(r for r, row in rows.items() if _n(row, "temp_n") or _n(row, "rh_n")):
            row, n_pair = rows[room], _n(pairs.get(room))
            n_temp = _n(row, "temp_n")
            shares = tuple(
                EnvelopeShare(
                    env.name,
                    _ratio(_n(counts[3 * i].get(room)), n_temp),
                    _ratio(_n(counts[3 * i + 1].get(room)), n_pair),
                    _ratio(_n(counts[3 * i + 2].get(room)), n_pair),
                )
                for i, env in enumerate(envelopes)
            )
            out.append(
                EnvelopeMonth(
                    room=room,
                    month=month,
                    start=lo,
                    end=hi,
                    samples=n_temp,
                    humidity_samples=n_pair,
                    temp_min=_f(row, "temp_min"),
                    temp_avg=_f(row, "temp_avg"),
                    temp_max=_f(row, "temp_max"),
                    rh_min=_f(row, "rh_min"),
                    rh_avg=_f(row, "rh_avg"),
                    rh_max=_f(row, "rh_max"),
                    shares=shares,
                )
            )
    return out


def daily_statement(room: bool) -> str:
    """Per room and local day (GROUP BY time(1d) tz(...)): temp and RH min/mean/max, temp count."""
    return DAILY.format(scope=SCOPE + (' AND "room" = $room' if room else ""))


async def daily_profile(
    client: QueryClient,
    site: str,
    room: str | None,
    start: date | datetime,
    end: date | datetime,
    tz: str | ZoneInfo,
) -> list[DayProfile]:
    """Per local day of [start, end): min/avg/max temperature and RH of `room` (None: every room).

    Days are the database's, aligned to local midnight by InfluxQL's tz() clause; days without
    samples are left out. Ordered by room, then day.
    """
    zone = _zone(tz)
    params: dict[str, Any] = {
        "site": site,
        "start": _aware(start, zone),
        "end": _aware(end, zone),
        "tz": zone.key,
    }
    if room is not None:
        params["room"] = room
    out: list[DayProfile] = []
    for series in await client.query(daily_statement(room is not None), params):
        name = series.tags.get("room", room or "")
        for row in series.rows():
            n = _n(row)
            if not n and _f(row, "rh_min") is None:
                continue
            ts: datetime = row["time"]
            out.append(
                DayProfile(
                    room=name,
                    day=ts.astimezone(zone).date(),
                    samples=n,
                    temp_min=_f(row, "temp_min"),
                    temp_avg=_f(row, "temp_avg"),
                    temp_max=_f(row, "temp_max"),
                    rh_min=_f(row, "rh_min"),
                    rh_avg=_f(row, "rh_avg"),
                    rh_max=_f(row, "rh_max"),
                )
            )
    out.sort(key=lambda d: (d.room, d.day))
    return out


__all__ = [
    "A1",
    "A2",
    "A3",
    "A4",
    "ENVELOPES",
    "RECOMMENDED",
    "DayProfile",
    "Envelope",
    "EnvelopeMonth",
    "EnvelopeShare",
    "QueryClient",
    "daily_profile",
    "dew_point_c",
    "envelope",
    "envelope_params",
    "envelope_stats",
    "gamma_of_dew_point",
    "humidity_within",
    "month_windows",
    "rh_at_dew_point",
    "temp_within",
    "within",
]
