# ruff: noqa: S608 - the statements are fixed text; every value in them is a bound $parameter.
"""ASHRAE TC 9.9 thermal envelopes and the share of each room-month spent inside them (CC-16000 (三)).

The envelopes are pure data (`Envelope`, `ENVELOPES`, `envelope()`), `within()` is the pure point test.
`envelope_days()` asks InfluxDB for aggregates only (count/sum/min/max with WHERE conditions, GROUP BY
room and local day): half a year of samples never leaves the database. Months (`months_of`,
`envelope_stats`) and daily profiles (`profiles_of`) add those days up. It takes any client with
`query`/`query_each` (`compliance.influxql.InfluxQL`) and any `DayStore`, and imports no I/O library,
so the pure modules (compliance.telemetry) may import this one. Every value in a statement is a bound
$parameter; the identifiers are fixed.

Kept days. Judging every sample's dew point costs the database a ln() per sample, about 2 s per local
day of a mid-size room on a small box, so half a year measured afresh takes minutes. A whole day that
has ended is measured once and kept (records database, `compliance_envelope_days`); later reports
measure only days not kept yet, or whose sample counts in the database no longer match what was kept
(late readings). The compliance process keeps the days up to yesterday measured in the background.

Inlets only. ASHRAE's envelopes are for air entering IT equipment; sensors elsewhere (a hot aisle,
return air) are named in `compliance.environment.exclude_devices` and left out of every statement.

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

import asyncio
import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass, replace
from datetime import date, datetime, time, timedelta
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
WINDOW = "time >= $start AND time < $end"
SCOPE = f'"site" = $site AND {WINDOW}'
BY_DAY = 'GROUP BY "room", time(1d) fill(none) tz($tz)'
DAILY = (
    'SELECT count("temp_c") AS n, min("temp_c") AS temp_min, mean("temp_c") AS temp_avg, '
    'max("temp_c") AS temp_max, min("rh_pct") AS rh_min, mean("rh_pct") AS rh_avg, max("rh_pct") AS rh_max '
    'FROM "env" WHERE {scope} GROUP BY "room", time(1d) fill(none) tz($tz)'
)
# Bump when what a stored day means changes (statements, formula): older stored days are then unused.
DAY_FORMAT = 2


def scope(excluded: int = 0) -> str:
    """Site and time range, minus the `excluded` devices bound as $x0, $x1, … (not inlet sensors)."""
    return SCOPE + "".join(f' AND "device" != $x{i}' for i in range(excluded))


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


def rh_condition(i: int, env: Envelope) -> str:
    """Envelope `i`'s RH bounds as a plain InfluxQL condition on rh_pct."""
    # RH <= 0 has no dew point (ln gives -inf or NaN there: said here rather than relied on).
    parts = ['"rh_pct" > 0']
    if env.rh_min is not None:
        parts.append(f'"rh_pct" >= $e{i}_rh_lo')
    if env.rh_max is not None:
        parts.append(f'"rh_pct" <= $e{i}_rh_hi')
    return "(" + " AND ".join(parts) + ")"


def dew_point_condition(i: int, env: Envelope) -> str:
    """Envelope `i`'s dew-point bounds as a condition on the subquery's g ("true" when it has none)."""
    parts = [f"{GAMMA} >= $e{i}_g_lo"] * (env.dp_min is not None) + [f"{GAMMA} <= $e{i}_g_hi"] * (
        env.dp_max is not None
    )
    return "(" + " AND ".join(parts) + ")" if parts else ""


def humidity_condition(i: int, env: Envelope) -> str:
    """Envelope `i`'s RH and dew-point bounds as an InfluxQL condition on rh_pct and g."""
    dp = dew_point_condition(i, env)
    return rh_condition(i, env)[:-1] + (" AND " + dp[1:-1] if dp else "") + ")"


def _with_gamma(where: str) -> str:
    """Each sample's temp_c, rh_pct and g = ln(RH/100) + a·T/(b+T) matching `where`, per room."""
    return (
        f'(SELECT "temp_c", "rh_pct", ln("rh_pct" / 100) + {MAGNUS_A!r} * "temp_c" / '
        f'({MAGNUS_B_C!r} + "temp_c") AS {GAMMA} FROM "env" WHERE {where} GROUP BY "room")'
    )


def stats_statement(excluded: int = 0) -> str:
    """Per room and local day: temp and RH count, sum, min and max (sums add up to monthly means)."""
    return (
        'SELECT count("temp_c") AS temp_n, sum("temp_c") AS temp_sum, min("temp_c") AS temp_min, '
        'max("temp_c") AS temp_max, count("rh_pct") AS rh_n, sum("rh_pct") AS rh_sum, '
        f'min("rh_pct") AS rh_min, max("rh_pct") AS rh_max FROM "env" WHERE {scope(excluded)} {BY_DAY}'
    )


def paired_statement(excluded: int = 0) -> str:
    """Per room and local day: samples with both temp_c and rh_pct (the humidity shares' denominator)."""
    return f'SELECT count("rh_pct") AS n FROM "env" WHERE {scope(excluded)} AND "temp_c" > -273.15 {BY_DAY}'


def counts_statement(excluded: int = 0) -> str:
    """Per room and local day: how many temp_c and rh_pct samples the database holds (cheap)."""
    counts = 'count("temp_c") AS temp_n, count("rh_pct") AS rh_n'
    return f'SELECT {counts} FROM "env" WHERE {scope(excluded)} {BY_DAY}'


def share_statements(i: int, env: Envelope, excluded: int = 0) -> list[str]:
    """Per room and local day: samples inside envelope `i`'s temperature, humidity, and both.

    The plain bounds (dry bulb, RH) go into the subquery's WHERE, so ln() runs only for samples that
    can still be inside; the dew-point bounds on g are the outer WHERE. The outer queries repeat the
    time range: GROUP BY time() needs it, and InfluxDB 3 prunes by the outer one (its docs' advice).
    """
    where, temp, rh = scope(excluded), temp_condition(i), rh_condition(i, env)
    dp = dew_point_condition(i, env)
    outer = WINDOW + (f" AND {dp}" if dp else "")
    return [
        f'SELECT count("temp_c") AS n FROM "env" WHERE {where} AND {temp} {BY_DAY}',
        f"SELECT count({GAMMA}) AS n FROM {_with_gamma(f'{where} AND {rh}')} WHERE {outer} {BY_DAY}",
        f"SELECT count({GAMMA}) AS n FROM {_with_gamma(f'{where} AND {temp} AND {rh}')} "
        f"WHERE {outer} {BY_DAY}",
    ]


def day_statements(envelopes: Sequence[Envelope], excluded: int = 0) -> list[str]:
    """Every statement of one measurement of days: statistics, paired count, three per envelope."""
    shares = [s for i, e in enumerate(envelopes) for s in share_statements(i, e, excluded)]
    return [stats_statement(excluded), paired_statement(excluded), *shares]


def _f(row: Mapping[str, Any], key: str) -> float | None:
    v = row.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _n(row: Mapping[str, Any] | None, key: str = "n") -> int:
    v = (row or {}).get(key)
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


def _ratio(inside: int, total: int) -> float | None:
    return inside / total if total else None


@dataclass(frozen=True, slots=True)
class DayEnvelope:
    """One room on one local day (or the part of it inside the asked range): what months add up.

    Counts, sums, minima and maxima of temp_c and rh_pct, the paired count, and per envelope (in the
    order asked) the samples inside its temperature, humidity and both.
    """

    room: str
    day: date
    temp_n: int
    temp_sum: float
    temp_min: float | None
    temp_max: float | None
    rh_n: int
    rh_sum: float
    rh_min: float | None
    rh_max: float | None
    paired_n: int
    inside: tuple[tuple[int, int, int], ...]

    def to_json(self) -> dict[str, Any]:
        """The day as JSON (what a DayStore keeps)."""
        return {
            "temp": [self.temp_n, self.temp_sum, self.temp_min, self.temp_max],
            "rh": [self.rh_n, self.rh_sum, self.rh_min, self.rh_max],
            "paired": self.paired_n,
            "inside": [list(t) for t in self.inside],
        }

    @classmethod
    def from_json(cls, room: str, day: date, data: Mapping[str, Any]) -> DayEnvelope:
        """The day `to_json` wrote."""
        t_n, t_sum, t_min, t_max = data["temp"]
        r_n, r_sum, r_min, r_max = data["rh"]
        inside = tuple((int(a), int(b), int(c)) for a, b, c in data["inside"])
        return cls(room, day, int(t_n), float(t_sum), t_min, t_max, int(r_n), float(r_sum), r_min, r_max,
                   int(data["paired"]), inside)  # fmt: skip


class DayStore(Protocol):
    """Where measured whole days are kept (compliance.store.EnvelopeDays), keyed by `envelope_key`."""

    def load(self, site: str, key: str, first: date, last: date) -> Sequence[DayEnvelope]:
        """The stored days in [first, last] (every room)."""
        ...

    def save(
        self, site: str, key: str, days: Sequence[date], rows: Sequence[DayEnvelope], now: datetime
    ) -> None:
        """Replace what is stored for `days` with `rows`."""
        ...


def envelope_key(envelopes: Sequence[Envelope], excluded: Sequence[str]) -> str:
    """Names what a stored day was measured against: the envelopes' bounds, the excluded devices."""
    what = [DAY_FORMAT, MAGNUS_A, MAGNUS_B_C, [list(astuple(e)) for e in envelopes], sorted(excluded)]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:32]


def _day_of(row: Mapping[str, Any], zone: ZoneInfo) -> date:
    ts: datetime = row["time"]
    return ts.astimezone(zone).date()


def _by_room_day(series: Sequence[SeriesLike], zone: ZoneInfo) -> dict[tuple[str, date], dict[str, Any]]:
    """{(room, local day): row} of a GROUP BY room, time(1d) result."""
    return {(s.tags.get("room", ""), _day_of(row, zone)): row for s in series for row in s.rows()}


async def measure_days(
    client: QueryClient,
    site: str,
    windows: Sequence[tuple[datetime, datetime]],
    tz: str | ZoneInfo,
    envelopes: Sequence[Envelope],
    excluded: Sequence[str] = (),
    concurrency: int = 2,
) -> list[DayEnvelope]:
    """Ask the database for the days of each window (one request each, `concurrency` at a time)."""
    zone = _zone(tz)
    statements = day_statements(envelopes, len(excluded))
    fixed = {
        "site": site,
        "tz": zone.key,
        **{f"x{i}": d for i, d in enumerate(excluded)},
        **{k: v for i, e in enumerate(envelopes) for k, v in envelope_params(i, e).items()},
    }
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(lo: datetime, hi: datetime) -> list[DayEnvelope]:
        async with gate:
            stats, paired, *shares_of = await client.query_each(statements, {**fixed, "start": lo, "end": hi})
        rows, pairs = _by_room_day(stats, zone), _by_room_day(paired, zone)
        counts = [_by_room_day(series, zone) for series in shares_of]
        out = []
        for key in sorted(k for k, row in rows.items() if _n(row, "temp_n") or _n(row, "rh_n")):
            row = rows[key]
            inside = tuple(
                (_n(counts[3 * i].get(key)), _n(counts[3 * i + 1].get(key)), _n(counts[3 * i + 2].get(key)))
                for i in range(len(envelopes))
            )
            out.append(
                DayEnvelope(
                    room=key[0],
                    day=key[1],
                    temp_n=_n(row, "temp_n"),
                    temp_sum=_f(row, "temp_sum") or 0.0,
                    temp_min=_f(row, "temp_min"),
                    temp_max=_f(row, "temp_max"),
                    rh_n=_n(row, "rh_n"),
                    rh_sum=_f(row, "rh_sum") or 0.0,
                    rh_min=_f(row, "rh_min"),
                    rh_max=_f(row, "rh_max"),
                    paired_n=_n(pairs.get(key)),
                    inside=inside,
                )
            )
        return out

    found = await asyncio.gather(*(one(lo, hi) for lo, hi in windows))
    return sorted((d for part in found for d in part), key=lambda d: (d.day, d.room))


async def sample_counts(
    client: QueryClient,
    site: str,
    start: datetime,
    end: datetime,
    tz: str | ZoneInfo,
    excluded: Sequence[str] = (),
) -> dict[tuple[str, date], tuple[int, int]]:
    """{(room, local day): (temp_c samples, rh_pct samples)} the database holds now, rooms with any."""
    zone = _zone(tz)
    params = {
        "site": site,
        "start": start,
        "end": end,
        "tz": zone.key,
        **{f"x{i}": d for i, d in enumerate(excluded)},
    }
    series = await client.query(counts_statement(len(excluded)), params)
    counts = {k: (_n(row, "temp_n"), _n(row, "rh_n")) for k, row in _by_room_day(series, zone).items()}
    return {k: c for k, c in counts.items() if c != (0, 0)}


def whole_days(start: datetime, end: datetime, zone: ZoneInfo, now: datetime) -> list[date]:
    """The local days lying wholly inside [start, end) that ended by `now` (the ones worth keeping)."""
    day = start.astimezone(zone).date()
    out: list[date] = []
    while True:
        lo = datetime.combine(day, time(0), tzinfo=zone)
        hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        if lo >= end:
            return out
        if lo >= start and hi <= end and hi <= now:
            out.append(day)
        day += timedelta(days=1)


def runs_of(
    days: Sequence[date], start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """Windows covering sorted `days`: consecutive days joined, cut at local months, clipped to the range."""
    out: list[tuple[datetime, datetime]] = []
    for day in days:
        lo = max(start, datetime.combine(day, time(0), tzinfo=zone))
        hi = min(end, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone))
        if out and out[-1][1] == lo and day.day != 1:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


async def envelope_days(
    client: QueryClient,
    site: str,
    start: date | datetime,
    end: date | datetime,
    tz: str | ZoneInfo,
    envelopes: Sequence[Envelope],
    *,
    excluded: Sequence[str] = (),
    store: DayStore | None = None,
    now: datetime | None = None,
    concurrency: int = 2,
) -> list[DayEnvelope]:
    """Per room and local day of [start, end): counts, statistics and samples inside each envelope.

    Without a store every day is measured by the database. With one (and `now`, the clock), a whole
    day that has ended is measured once and kept; it is used again only while the database still holds
    exactly the samples it was measured from (the same temp_c and rh_pct count per room, one cheap
    count statement over the range), so readings that arrive late (an outbox flushed after an outage,
    a history import) make the day be measured again. Ordered by day, then room.
    """
    zone = _zone(tz)
    lo, hi = _aware(start, zone), _aware(end, zone)
    if store is None or now is None:
        windows = [(w_lo, w_hi) for _, w_lo, w_hi in month_windows(lo, hi, zone)]
        return await measure_days(client, site, windows, zone, envelopes, excluded, concurrency)
    key = envelope_key(envelopes, excluded)
    whole = whole_days(lo, hi, zone, now)
    stored: dict[date, dict[str, DayEnvelope]] = {}
    if whole:
        for d in store.load(site, key, whole[0], whole[-1]):
            stored.setdefault(d.day, {})[d.room] = d
    counts: dict[date, dict[str, tuple[int, int]]] = {}
    for (room, day), c in (await sample_counts(client, site, lo, hi, zone, excluded)).items():
        counts.setdefault(day, {})[room] = c
    kept = {
        day
        for day in whole
        if day in stored and {r: (d.temp_n, d.rh_n) for r, d in stored[day].items()} == counts.get(day, {})
    }
    todo = sorted(day for day in counts if day not in kept)
    measured = await measure_days(
        client, site, runs_of(todo, lo, hi, zone), zone, envelopes, excluded, concurrency
    )
    stale = sorted(set(todo) & set(whole))
    if stale:
        store.save(site, key, stale, [d for d in measured if d.day in set(stale)], now)
    out = [d for day in sorted(kept) for d in stored[day].values()] + measured
    return sorted(out, key=lambda d: (d.day, d.room))


def months_of(
    days: Sequence[DayEnvelope],
    start: date | datetime,
    end: date | datetime,
    tz: str | ZoneInfo,
    envelopes: Sequence[Envelope],
) -> list[EnvelopeMonth]:
    """Add days up to local calendar months of [start, end), per room: shares and statistics."""
    windows = {first: (lo, hi) for first, lo, hi in month_windows(start, end, tz)}
    groups: dict[tuple[date, str], list[DayEnvelope]] = {}
    for d in days:
        groups.setdefault((d.day.replace(day=1), d.room), []).append(d)
    out = []
    for (month, room), ds in sorted(groups.items()):
        t_n, r_n, pair = sum(d.temp_n for d in ds), sum(d.rh_n for d in ds), sum(d.paired_n for d in ds)
        if not (t_n or r_n) or month not in windows:
            continue
        inside = [tuple(sum(d.inside[i][k] for d in ds) for k in range(3)) for i in range(len(envelopes))]
        lo, hi = windows[month]
        out.append(
            EnvelopeMonth(
                room=room,
                month=month,
                start=lo,
                end=hi,
                samples=t_n,
                humidity_samples=pair,
                temp_min=_least(d.temp_min for d in ds),
                temp_avg=sum(d.temp_sum for d in ds) / t_n if t_n else None,
                temp_max=_most(d.temp_max for d in ds),
                rh_min=_least(d.rh_min for d in ds),
                rh_avg=sum(d.rh_sum for d in ds) / r_n if r_n else None,
                rh_max=_most(d.rh_max for d in ds),
                shares=tuple(
                    EnvelopeShare(
                        e.name,
                        _ratio(inside[i][0], t_n),
                        _ratio(inside[i][1], pair),
                        _ratio(inside[i][2], pair),
                    )
                    for i, e in enumerate(envelopes)
                ),
            )
        )
    return sorted(out, key=lambda m: (m.month, m.room))


def profiles_of(days: Sequence[DayEnvelope]) -> list[DayProfile]:
    """Each day's min/avg/max temperature and RH, ordered by room, then day."""
    out = [
        DayProfile(
            room=d.room,
            day=d.day,
            samples=d.temp_n,
            temp_min=d.temp_min,
            temp_avg=d.temp_sum / d.temp_n if d.temp_n else None,
            temp_max=d.temp_max,
            rh_min=d.rh_min,
            rh_avg=d.rh_sum / d.rh_n if d.rh_n else None,
            rh_max=d.rh_max,
        )
        for d in days
        if d.temp_n or d.rh_n
    ]
    return sorted(out, key=lambda p: (p.room, p.day))


def _least(values: Iterable[float | None]) -> float | None:
    return min((v for v in values if v is not None), default=None)


def _most(values: Iterable[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)


async def envelope_stats(
    client: QueryClient,
    site: str,
    start: date | datetime,
    end: date | datetime,
    tz: str | ZoneInfo,
    envelopes: Sequence[Envelope],
    *,
    excluded: Sequence[str] = (),
    store: DayStore | None = None,
    now: datetime | None = None,
) -> list[EnvelopeMonth]:
    """Per room and local calendar month of [start, end): shares inside each envelope and statistics.

    The days of `envelope_days` (aggregates only, see the module docstring) added up to months.
    Ordered by month, then room; a month without samples gives no rows.
    """
    days = await envelope_days(
        client, site, start, end, tz, envelopes, excluded=excluded, store=store, now=now
    )
    return months_of(days, start, end, tz, envelopes)


def daily_statement(room: bool, excluded: int = 0) -> str:
    """Per room and local day (GROUP BY time(1d) tz(...)): temp and RH min/mean/max, temp count."""
    return DAILY.format(scope=scope(excluded) + (' AND "room" = $room' if room else ""))


async def daily_profile(
    client: QueryClient,
    site: str,
    room: str | None,
    start: date | datetime,
    end: date | datetime,
    tz: str | ZoneInfo,
    excluded: Sequence[str] = (),
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
        **{f"x{i}": d for i, d in enumerate(excluded)},
    }
    if room is not None:
        params["room"] = room
    out: list[DayProfile] = []
    for series in await client.query(daily_statement(room is not None, len(excluded)), params):
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
    "DayEnvelope",
    "DayProfile",
    "DayStore",
    "Envelope",
    "EnvelopeMonth",
    "EnvelopeShare",
    "QueryClient",
    "daily_profile",
    "dew_point_c",
    "envelope",
    "envelope_days",
    "envelope_key",
    "envelope_params",
    "envelope_stats",
    "gamma_of_dew_point",
    "humidity_within",
    "measure_days",
    "month_windows",
    "months_of",
    "profiles_of",
    "rh_at_dew_point",
    "runs_of",
    "sample_counts",
    "temp_within",
    "whole_days",
    "within",
]
