# ruff: noqa: S608 - statements hold only quote_ident() output, fixed regexes and bound $parameters.
"""Stored genset and UPS samples for rebuilding test records from history (source 'history').

What the detectors of generator_runs.py and ups_tests.py need, without pulling every sample of half a
year: the database finds the generator's runs and the rows are streamed (chunked=true), so memory holds
the selected points, never the whole answer.

* `genset_runs_raw`: every genset sample from the last one before a run to the first one after it.
  The database selects the samples where the engine ran (engine state pre_start … post_run, or load or
  power above 0); those close together form a run, whose samples are then fetched unfiltered (a
  transfer break that reads 0 % inside a run stays visible) together with the sample before it (the set
  at rest) and after it (the stop). Fed to `detect_runs` they give the records all samples would: what
  is left out is the set at rest between runs.
* `ups_test_results_raw`: the UPS samples where test_result or test_source changes, the first of each
  UPS included. InfluxQL cannot compare a row with the previous one, so the database returns the
  samples that carry a test_result (two string fields per row) and the changes are kept here. Nothing
  is dropped by value: `in_progress` and `none` between two `passed` are what tells a second test from
  the first one still being reported. Fed to `detect_ups_tests` they give the records all samples would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from compliance.influxql import InfluxQL, Params, Series, quote_ident

# Engine states of a set that is starting, running or stopping (docs/contracts.md, genset engine_state).
ACTIVE_STATES = ("pre_start", "warming_up", "running", "cooling_down", "post_run")
GENSET_FIELDS = ("control_mode", "engine_state", "gen_load_pct", "gen_power_w")
# Alarms whose name mentions the mains; which of them mean a failure is the detector's decision.
MAINS_ALARMS = r"/^alarm_\w*(mains|utility)\w*$/"
UPS_FIELDS = ("test_result", "test_source")
# Running samples closer than this belong to one run (the detector itself splits on its own max gap).
JOIN_GAP_S = 300.0
# The schema's timestamps have microsecond resolution; a bound one tick past a sample includes it.
_TICK = timedelta(microseconds=1)

FieldValue = float | str | bool | None


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One stored sample: time, room and device tags, and the selected fields (None: not written)."""

    ts: datetime
    room: str
    device: str
    fields: dict[str, FieldValue]


def _points(series: Series) -> list[HistoryPoint]:
    room, device = series.tags.get("room", ""), series.tags.get("device", "")
    out = []
    for row in series.values:
        values = dict(zip(series.columns, row, strict=True))
        ts = values.pop("time")
        # A metric flagged bad is written as <metric>_quality; the regex above would select it too.
        fields = {k: _value(v) for k, v in values.items() if not k.endswith("_quality")}
        out.append(HistoryPoint(ts, room, device, fields))
    return out


def _value(v: object) -> FieldValue:
    # Numbers are floats in the database (docs/influx-schema.md); JSON gives 40 for 40.0.
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return float(v)
    return str(v)


async def _stream_points(client: InfluxQL, q: str, params: Params) -> AsyncIterator[HistoryPoint]:
    async for series in client.stream(q, params):
        for p in _points(series):
            yield p


def _scope(extra: str = "") -> str:
    return f"{quote_ident('site')} = $site AND time >= $start AND time < $end{extra}"


def _genset_select() -> str:
    return ", ".join([*(quote_ident(f) for f in GENSET_FIELDS), MAINS_ALARMS])


def running_statement() -> str:
    """The genset samples where the engine is starting, running or stopping, or carries a load."""
    state, load, power = quote_ident("engine_state"), quote_ident("gen_load_pct"), quote_ident("gen_power_w")
    states = "|".join(ACTIVE_STATES)
    return (
        f"SELECT {load} FROM {quote_ident('genset')} WHERE {_scope()} AND "
        f"({state} =~ /^({states})$/ OR {load} > 0 OR {power} > 0) "
        f"GROUP BY {quote_ident('room')}, {quote_ident('device')}"
    )


def span_statements() -> list[str]:
    """A run's samples [$first, $last], the sample before it and the one after it, of one device."""
    m, dev = quote_ident("genset"), f"{quote_ident('device')} = $device AND {quote_ident('room')} = $room"
    by = f"GROUP BY {quote_ident('room')}, {quote_ident('device')}"
    select = f"SELECT {_genset_select()} FROM {m} WHERE {_scope()} AND {dev}"
    return [
        f"{select} AND time >= $first AND time < $after_last {by}",
        f"{select} AND time < $first {by} ORDER BY time DESC LIMIT 1",
        f"{select} AND time >= $after_last {by} LIMIT 1",
    ]


async def genset_runs_raw(
    client: InfluxQL, site: str, start: datetime, end: datetime, *, join_gap_s: float = JOIN_GAP_S
) -> list[HistoryPoint]:
    """Genset samples of [start, end) around each run (see the module docstring), per device in time.

    Fields: control_mode, engine_state, gen_load_pct, gen_power_w and every alarm_* naming the mains.
    """
    params: Params = {"site": site, "start": start, "end": end}
    # Pass 1: only the times of the running samples, folded into spans as they stream in.
    spans: list[tuple[str, str, datetime, datetime]] = []
    gap = timedelta(seconds=join_gap_s)
    async for p in _stream_points(client, running_statement(), params):
        last = spans[-1] if spans else None
        if last is not None and last[:2] == (p.room, p.device) and p.ts - last[3] <= gap:
            spans[-1] = (p.room, p.device, last[2], p.ts)
        else:
            spans.append((p.room, p.device, p.ts, p.ts))
    # Pass 2: each span's samples unfiltered, with its neighbours.
    seen: set[tuple[str, str, datetime]] = set()
    out: list[HistoryPoint] = []
    for room, device, first, last_ts in spans:
        span_params = {
            **params,
            "room": room,
            "device": device,
            "first": first,
            "after_last": last_ts + _TICK,
        }
        for series_list in await client.query_each(span_statements(), span_params):
            for series in series_list:
                for p in _points(series):
                    key = (p.room, p.device, p.ts)  # two spans closer than join_gap share a neighbour
                    if key not in seen:
                        seen.add(key)
                        out.append(p)
    out.sort(key=lambda p: (p.room, p.device, p.ts))
    return out


def ups_statement() -> str:
    """UPS samples that carry a test_result, with test_result and test_source."""
    fields = ", ".join(quote_ident(f) for f in UPS_FIELDS)
    return (
        f"SELECT {fields} FROM {quote_ident('ups')} WHERE {_scope()} AND {quote_ident('test_result')} =~ /./ "
        f"GROUP BY {quote_ident('room')}, {quote_ident('device')}"
    )


async def ups_test_results_raw(
    client: InfluxQL, site: str, start: datetime, end: datetime
) -> list[HistoryPoint]:
    """UPS samples of [start, end) whose test_result or test_source differs from the UPS's previous
    sample, and each UPS's first one; per device in time order."""
    params: Params = {"site": site, "start": start, "end": end}
    last: dict[tuple[str, str], tuple[FieldValue, ...]] = {}
    out: list[HistoryPoint] = []
    async for p in _stream_points(client, ups_statement(), params):
        key = (p.room, p.device)
        state = tuple(p.fields.get(f) for f in UPS_FIELDS)
        prev = last.get(key)
        # test_source is optional: a sample without it (not reported, or flagged bad) changes nothing.
        if prev is not None and state[1] is None:
            state = (state[0], prev[1])
        if state != prev:
            last[key] = state
            out.append(p)
    out.sort(key=lambda p: (p.room, p.device, p.ts))
    return out


__all__: Sequence[str] = [
    "HistoryPoint",
    "genset_runs_raw",
    "ups_test_results_raw",
]
