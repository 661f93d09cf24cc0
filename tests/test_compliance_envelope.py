"""ASHRAE envelopes (pure) and the per room-month shares and daily profiles computed by a real influxd 1.6.

The synthetic month boundary: room 機房A has June samples on 06-30 (local) and July samples on 07-01;
Asia/Taipei is UTC+8, so the first eight hours of 07-01 local are still June in UTC and would drag
June's minimum down to 17 °C if months were cut in UTC.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.dewpoint import dew_point_c as alerts_dew_point_c
from compliance.envelope import (
    A1,
    A2,
    A3,
    A4,
    ENVELOPES,
    RECOMMENDED,
    DayEnvelope,
    Envelope,
    daily_profile,
    dew_point_c,
    envelope,
    envelope_key,
    envelope_params,
    envelope_stats,
    gamma_of_dew_point,
    humidity_condition,
    humidity_within,
    month_windows,
    rh_at_dew_point,
    runs_of,
    temp_within,
    whole_days,
    within,
)
from compliance.envelope_store import EnvelopeDays
from compliance.influxql import InfluxQL, Series
from ingest.influx_writer import InfluxV1Writer
from records.db import make_engine, session_factory
from records.migrate import upgrade
from testkit.services import Influxd

TPE = ZoneInfo("Asia/Taipei")
ROOM_A = "機房A"
ROOM_B = "B\"室'1"  # a double and a single quote: both must survive statements and results
_db_numbers = itertools.count()


# -- pure: the envelopes and the dew point


def test_envelopes_are_the_ashrae_table() -> None:
    assert Envelope("recommended", 18.0, 27.0, -9.0, 15.0, None, 60.0) == RECOMMENDED
    assert Envelope("A1", 15.0, 32.0, -12.0, 17.0, 8.0, 80.0) == A1
    assert (A2.temp_min, A2.temp_max, A2.dp_max, A2.rh_min, A2.rh_max) == (10.0, 35.0, 21.0, 8.0, 80.0)
    assert (A3.temp_min, A3.temp_max, A3.dp_max, A3.rh_min, A3.rh_max) == (5.0, 40.0, 24.0, 8.0, 85.0)
    assert (A4.temp_min, A4.temp_max, A4.dp_max, A4.rh_min, A4.rh_max) == (5.0, 45.0, 24.0, 8.0, 90.0)
    assert list(ENVELOPES) == ["recommended", "A1", "A2", "A3", "A4"]
    assert envelope("recommended", rh_max_pct=70.0).rh_max == 70.0
    assert envelope("A1", rh_max_pct=70.0) is A1  # the ceiling is the recommended envelope's only
    with pytest.raises(ValueError, match="unknown envelope 'A5'"):
        envelope("A5")


@pytest.mark.parametrize(
    ("temp", "rh"), [(22.0, 45.0), (25.0, 58.0), (-5.0, 80.0), (45.0, 8.0), (30.0, 100.0)]
)
def test_dew_point_is_the_alerts_engines_magnus(temp: float, rh: float) -> None:
    dp = dew_point_c(temp, rh)
    assert dp == pytest.approx(alerts_dew_point_c(temp, rh), abs=1e-12)
    assert dp is not None
    assert rh_at_dew_point(temp, dp) == pytest.approx(rh, rel=1e-9)


def test_dew_point_of_nothing_is_none() -> None:
    assert dew_point_c(22.0, 0.0) is None
    assert dew_point_c(math.nan, 50.0) is None


def test_within_judges_temperature_rh_and_dew_point() -> None:
    assert within(RECOMMENDED, 22.0, 45.0)
    assert not within(RECOMMENDED, 28.0, 45.0)  # too warm
    assert not within(RECOMMENDED, 22.0, 65.0)  # RH above the ceiling
    # RH alone passes (58 <= 60) but the dew point (16.2 °C) is above 15 °C.
    assert temp_within(RECOMMENDED, 25.0)
    assert not humidity_within(RECOMMENDED, 25.0, 58.0)
    assert not within(RECOMMENDED, 25.0, 58.0)
    assert within(A1, 25.0, 58.0)
    assert within(envelope("recommended", rh_max_pct=70.0), 20.0, 65.0)  # DP 13.2 °C
    # Dry air: RH above A1's 8 % floor but the dew point below -12 °C.
    assert not within(A1, 16.0, 9.0)
    # The sensor's own dew point, where given, is the one judged.
    assert not within(RECOMMENDED, 22.0, 45.0, dew_point=15.5)
    # Missing values are not judged; nothing at all is not inside.
    assert within(RECOMMENDED, 22.0, None)
    assert not within(RECOMMENDED, 30.0, None)
    assert not within(RECOMMENDED, None, None)


@pytest.mark.parametrize("dp", [-12.0, -9.0, 0.0, 15.0, 17.0, 21.0, 24.0])
def test_the_gamma_threshold_is_the_dew_point_limit(dp: float) -> None:
    """What the database compares (g = ln(RH/100) + a·T/(b+T) against a·D/(b+D)) is the dew point."""
    threshold = gamma_of_dew_point(dp)
    for temp in (5.0, 18.0, 27.0, 45.0):
        for off in (-0.001, 0.001):
            rh = rh_at_dew_point(temp, dp + off)
            if not 0 < rh <= 100:
                continue
            g = math.log(rh / 100) + 17.625 * temp / (243.04 + temp)
            assert (g <= threshold) == (off < 0)


def test_conditions_are_fixed_text_with_the_bounds_as_parameters() -> None:
    assert humidity_condition(3, A1) == (
        '("rh_pct" > 0 AND "rh_pct" >= $e3_rh_lo AND "rh_pct" <= $e3_rh_hi '
        'AND "gamma" >= $e3_g_lo AND "gamma" <= $e3_g_hi)'
    )
    assert humidity_condition(0, RECOMMENDED) == (
        '("rh_pct" > 0 AND "rh_pct" <= $e0_rh_hi AND "gamma" >= $e0_g_lo AND "gamma" <= $e0_g_hi)'
    )
    assert envelope_params(0, RECOMMENDED) == {
        "e0_t_lo": 18.0,
        "e0_t_hi": 27.0,
        "e0_rh_hi": 60.0,
        "e0_g_lo": gamma_of_dew_point(-9.0),
        "e0_g_hi": gamma_of_dew_point(15.0),
    }


def test_month_windows_are_local_calendar_months() -> None:
    windows = month_windows(date(2026, 6, 1), date(2026, 8, 1), TPE)
    assert [(m, lo, hi) for m, lo, hi in windows] == [
        (date(2026, 6, 1), datetime(2026, 6, 1, tzinfo=TPE), datetime(2026, 7, 1, tzinfo=TPE)),
        (date(2026, 7, 1), datetime(2026, 7, 1, tzinfo=TPE), datetime(2026, 8, 1, tzinfo=TPE)),
    ]
    # June ends at 2026-06-30T16:00Z: 23:30 local on the 30th is still June.
    assert windows[0][2].astimezone(ZoneInfo("UTC")) == datetime(2026, 6, 30, 16, tzinfo=ZoneInfo("UTC"))
    # Clipped to [start, end); December rolls into January.
    clipped = month_windows(datetime(2026, 12, 15, 12, tzinfo=TPE), date(2027, 1, 10), "Asia/Taipei")
    assert [(m, lo.day, hi.month, hi.day) for m, lo, hi in clipped] == [
        (date(2026, 12, 1), 15, 1, 1),
        (date(2027, 1, 1), 1, 1, 10),
    ]
    with pytest.raises(ValueError, match="naive"):
        month_windows(datetime(2026, 6, 1), date(2026, 7, 1), TPE)


# -- against influxd: synthetic samples with known shares


@dataclass(frozen=True)
class Sample:
    room: str
    device: str
    at: datetime  # local
    temp: float | None
    rh: float


def _run(room: str, device: str, start: datetime, n: int, temp: float | None, rh: float) -> list[Sample]:
    return [Sample(room, device, start + timedelta(minutes=10 * i), temp, rh) for i in range(n)]


def _samples() -> list[Sample]:
    d0630, d0701 = datetime(2026, 6, 30, tzinfo=TPE), datetime(2026, 7, 1, tzinfo=TPE)
    return [
        # Room A, June: 00:00-17:50 comfortable, 18:00-19:50 RH passes but the dew point fails,
        # 20:00-23:50 too warm for recommended (23:30 local is 15:30Z: June either way).
        *_run(ROOM_A, "env-1", d0630, 108, 22.0, 45.0),
        *_run(ROOM_A, "env-1", d0630 + timedelta(hours=18), 12, 25.0, 58.0),
        *_run(ROOM_A, "env-1", d0630 + timedelta(hours=20), 24, 30.0, 35.0),
        # Just after the local start of June (still May in UTC), and just before it (excluded).
        Sample(ROOM_A, "env-1", datetime(2026, 6, 1, 0, 10, tzinfo=TPE), 22.0, 45.0),
        Sample(ROOM_A, "env-1", datetime(2026, 5, 31, 23, 50, tzinfo=TPE), 40.0, 45.0),
        # Room A, July: cool morning (00:00-11:50, still June in UTC until 08:00), then 20 °C.
        *_run(ROOM_A, "env-1", d0701, 72, 17.0, 50.0),
        *_run(ROOM_A, "env-1", d0701 + timedelta(hours=12), 72, 20.0, 50.0),
        # Room B, June: humid (RH 70, DP 18.2: outside recommended and A1, inside A2); six polls
        # without a temperature (temp_c failed) count for RH statistics only.
        *_run(ROOM_B, "env-2", d0630, 138, 24.0, 70.0),
        *_run(ROOM_B, "env-2", d0630 + timedelta(hours=23), 6, None, 70.0),
        # Room B, July: fine.
        *_run(ROOM_B, "env-2", d0701, 144, 24.0, 50.0),
    ]


def _line(s: Sample) -> str:
    fields = [f"rh_pct={s.rh:.1f}"]
    if s.temp is None:
        fields.append('temp_c_quality="comm_error"')
    else:
        dp = dew_point_c(s.temp, s.rh)
        assert dp is not None
        fields[:0] = [f"temp_c={s.temp:.1f}"]
        fields.append(f"dew_point_c={dp:.1f}")
    fields.append('quality="good"')
    tags = f"device={s.device},model=geist-watchdog15,room={s.room},site=tpe1"
    return f"env,{tags} {','.join(fields)} {_ns_of(s.at)}"


@pytest.fixture
async def client(influxd: Influxd) -> AsyncIterator[InfluxQL]:
    """A client on a fresh database holding the synthetic samples."""
    name = f"env{next(_db_numbers)}_{time.monotonic_ns()}"
    influxd.create_database(name)
    writer = InfluxV1Writer(influxd.url, name, timeout_s=10)
    try:
        assert (await writer.write([_line(s) for s in _samples()])).accepted
        # Another site's room of the same name must not leak in.
        other = f"env,device=x,room={ROOM_A},site=other temp_c=99.0,rh_pct=99.0 1782835200000000000"
        assert (await writer.write([other])).accepted
    finally:
        await writer.close()
    async with InfluxQL(influxd.url, name, timeout_s=30) as c:
        yield c


def _expected(samples: list[Sample], env: Envelope) -> tuple[float, float, float]:
    """Shares computed sample by sample with the exact dew point (the reference for the database)."""
    temps = [s for s in samples if s.temp is not None]
    for s in temps:
        assert s.temp is not None
        dp = dew_point_c(s.temp, s.rh)
        assert dp is not None
        # No sample sits on a dew-point limit, where float rounding could tip the verdict.
        assert all(abs(dp - b) > 0.001 for b in (env.dp_min, env.dp_max) if b is not None)
    n = len(temps)
    inside_t = sum(temp_within(env, s.temp) for s in temps if s.temp is not None)
    inside_h = sum(humidity_within(env, s.temp, s.rh) for s in temps if s.temp is not None)
    inside_b = sum(within(env, s.temp, s.rh) for s in temps)
    return inside_t / n, inside_h / n, inside_b / n


@pytest.mark.integration
async def test_envelope_shares_and_statistics_per_room_and_local_month(client: InfluxQL) -> None:
    envs = [*ENVELOPES.values()]
    months = await envelope_stats(client, "tpe1", date(2026, 6, 1), date(2026, 8, 1), "Asia/Taipei", envs)
    got = {(m.room, m.month): m for m in months}
    june, july = date(2026, 6, 1), date(2026, 7, 1)
    # By month, then room (code point order: 'B"…' before '機…').
    assert list(got) == [(ROOM_B, june), (ROOM_A, june), (ROOM_B, july), (ROOM_A, july)]

    a6 = got[(ROOM_A, june)]
    # 144 samples of 06-30 and the one of 06-01 00:10 local; not the 05-31 one, not July's morning.
    assert (a6.samples, a6.humidity_samples) == (145, 145)
    assert (a6.temp_min, a6.temp_max) == (22.0, 30.0)
    assert a6.temp_avg == pytest.approx((109 * 22.0 + 12 * 25.0 + 24 * 30.0) / 145)
    assert (a6.rh_min, a6.rh_max) == (35.0, 58.0)
    assert a6.rh_avg == pytest.approx((109 * 45.0 + 12 * 58.0 + 24 * 35.0) / 145)
    assert a6.start == datetime(2026, 6, 1, tzinfo=TPE)
    assert a6.end == datetime(2026, 7, 1, tzinfo=TPE)
    rec = a6.share("recommended")
    assert rec.temp == pytest.approx(121 / 145)
    assert rec.humidity == pytest.approx(133 / 145)  # the 12 dew-point failures are out although RH ≤ 60
    assert rec.both == pytest.approx(109 / 145)
    assert (a6.share("A1").temp, a6.share("A1").humidity, a6.share("A1").both) == (1.0, 1.0, 1.0)

    a7 = got[(ROOM_A, july)]
    assert (a7.samples, a7.temp_min, a7.temp_max, a7.temp_avg) == (144, 17.0, 20.0, 18.5)
    assert a7.share("recommended").temp == pytest.approx(0.5)
    assert a7.share("recommended").humidity == 1.0

    b6 = got[(ROOM_B, june)]
    assert (b6.samples, b6.humidity_samples) == (138, 138)  # the six polls without temp_c
    assert (b6.rh_min, b6.rh_avg, b6.rh_max) == (70.0, 70.0, 70.0)
    shares = {s.envelope: (s.temp, s.humidity, s.both) for s in b6.shares}
    assert shares["recommended"] == (1.0, 0.0, 0.0)
    assert shares["A1"] == (1.0, 0.0, 0.0)  # DP 18.2 > 17
    assert shares["A2"] == (1.0, 1.0, 1.0)

    # Every share equals the sample-by-sample reference.
    samples = _samples()
    bounds = {m: (lo, hi) for m, lo, hi in month_windows(date(2026, 6, 1), date(2026, 8, 1), TPE)}
    for (room, month), m in got.items():
        lo, hi = bounds[month]
        mine = [s for s in samples if s.room == room and lo <= s.at < hi]
        for env in envs:
            share = m.share(env.name)
            assert (share.temp, share.humidity, share.both) == pytest.approx(_expected(mine, env)), (
                room,
                month,
            )


@pytest.mark.integration
async def test_a_month_without_samples_gives_no_rows(client: InfluxQL) -> None:
    assert await envelope_stats(client, "tpe1", date(2026, 8, 1), date(2026, 9, 1), TPE, [RECOMMENDED]) == []
    assert await envelope_stats(client, "nosuchsite", date(2026, 6, 1), date(2026, 8, 1), TPE, [A1]) == []


@pytest.mark.integration
async def test_daily_profile_per_local_day(client: InfluxQL) -> None:
    days = await daily_profile(client, "tpe1", ROOM_A, date(2026, 6, 30), date(2026, 7, 2), "Asia/Taipei")
    assert [(d.room, d.day, d.samples) for d in days] == [
        (ROOM_A, date(2026, 6, 30), 144),
        (ROOM_A, date(2026, 7, 1), 144),
    ]
    june30, july1 = days
    assert (june30.temp_min, june30.temp_max, june30.rh_min, june30.rh_max) == (22.0, 30.0, 35.0, 58.0)
    assert june30.temp_avg == pytest.approx((108 * 22.0 + 12 * 25.0 + 24 * 30.0) / 144)
    assert (july1.temp_min, july1.temp_avg, july1.temp_max, july1.rh_avg) == (17.0, 18.5, 20.0, 50.0)

    # A room whose name holds quotes; every room when none is named.
    quoted = await daily_profile(client, "tpe1", ROOM_B, date(2026, 6, 30), date(2026, 7, 2), TPE)
    assert [(d.room, d.day, d.samples, d.rh_max) for d in quoted] == [
        (ROOM_B, date(2026, 6, 30), 138, 70.0),
        (ROOM_B, date(2026, 7, 1), 144, 50.0),
    ]
    every = await daily_profile(client, "tpe1", None, date(2026, 6, 1), date(2026, 7, 2), TPE)
    assert [(d.room, d.day) for d in every] == [
        (ROOM_B, date(2026, 6, 30)),
        (ROOM_B, date(2026, 7, 1)),
        (ROOM_A, date(2026, 6, 1)),
        (ROOM_A, date(2026, 6, 30)),
        (ROOM_A, date(2026, 7, 1)),
    ]


@pytest.mark.integration
async def test_the_database_judges_the_dew_point_to_a_hundredth_of_a_degree(influxd: Influxd) -> None:
    """Samples 0.01 °C of dew point either side of every limit, at temperatures over the range: the
    database's shares are exactly within()'s."""
    lines, samples = [], []
    at = datetime(2026, 3, 1, tzinfo=TPE)
    for dp_limit in (-12.0, -9.0, 15.0, 17.0, 21.0):
        for temp in (10.0, 14.3, 18.0, 21.7, 25.0, 27.0, 31.9, 35.0):
            for off in (-0.01, 0.01):
                rh = rh_at_dew_point(temp, dp_limit + off)
                if not 0 < rh <= 100:
                    continue
                at += timedelta(minutes=1)
                samples.append(Sample("r", "env-9", at, temp, rh))
                lines.append(f"env,device=env-9,room=r,site=tpe1 temp_c={temp!r},rh_pct={rh!r} {_ns_of(at)}")
    name = f"env{next(_db_numbers)}_{time.monotonic_ns()}"
    influxd.create_database(name)
    writer = InfluxV1Writer(influxd.url, name, timeout_s=10)
    try:
        assert (await writer.write(lines)).accepted
    finally:
        await writer.close()
    envs = [RECOMMENDED, A1, A2]
    async with InfluxQL(influxd.url, name) as client:
        (month,) = await envelope_stats(client, "tpe1", date(2026, 3, 1), date(2026, 4, 1), TPE, envs)
    assert month.samples == len(samples)
    for env in envs:
        share = month.share(env.name)
        assert (share.temp, share.humidity, share.both) == pytest.approx(_expected(samples, env), abs=1e-12)
        assert share.humidity is not None
        assert 0 < share.humidity < 1  # the limits cut through the samples


def _ns_of(ts: datetime) -> int:
    return int(ts.timestamp()) * 1_000_000_000


# -- kept days: measured once, reused while the database holds the same samples


class Watched:
    """The real client, noting which statements went to the database (an observer, not a stand-in)."""

    def __init__(self, client: InfluxQL):
        self.client = client
        self.requests: list[dict[str, Any]] = []

    async def query(self, q: str, params: Mapping[str, Any] | None = None) -> Sequence[Series]:
        self.requests.append({"statements": [q], **(params or {})})
        return await self.client.query(q, params)

    async def query_each(
        self, statements: Sequence[str], params: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[Series]]:
        self.requests.append({"statements": list(statements), **(params or {})})
        return await self.client.query_each(statements, params)

    def measured(self) -> list[tuple[datetime, datetime]]:
        """The windows of the requests that measured days (not just counted samples)."""
        return [(r["start"], r["end"]) for r in self.requests if len(r["statements"]) > 1]


@pytest.fixture
def kept(tmp_path: Path) -> EnvelopeDays:
    engine = make_engine(tmp_path / "records.db")
    upgrade(engine)
    return EnvelopeDays(session_factory(engine))


@pytest.mark.integration
async def test_kept_days_give_the_same_months_and_are_measured_once(
    client: InfluxQL, kept: EnvelopeDays
) -> None:
    envs = [RECOMMENDED, A1]
    start, end, now = date(2026, 6, 1), date(2026, 8, 1), datetime(2026, 8, 2, tzinfo=TPE)
    fresh = await envelope_stats(client, "tpe1", start, end, TPE, envs)
    watched = Watched(client)
    first = await envelope_stats(watched, "tpe1", start, end, TPE, envs, store=kept, now=now)
    assert first == pytest.approx(fresh)
    # 06-01, 06-30 and 07-01 have samples: measured in two windows (06-01, then 06-30..07-01 cut at July).
    assert watched.measured() == [
        (datetime(2026, 6, 1, tzinfo=TPE), datetime(2026, 6, 2, tzinfo=TPE)),
        (datetime(2026, 6, 30, tzinfo=TPE), datetime(2026, 7, 1, tzinfo=TPE)),
        (datetime(2026, 7, 1, tzinfo=TPE), datetime(2026, 7, 2, tzinfo=TPE)),
    ]
    key = envelope_key(envs, ())
    assert {(d.day, d.room) for d in kept.load("tpe1", key, start, end)} == {
        (date(2026, 6, 1), ROOM_A),
        (date(2026, 6, 30), ROOM_A),
        (date(2026, 6, 30), ROOM_B),
        (date(2026, 7, 1), ROOM_A),
        (date(2026, 7, 1), ROOM_B),
    }
    again = Watched(client)
    assert await envelope_stats(again, "tpe1", start, end, TPE, envs, store=kept, now=now) == first
    assert again.measured() == []  # one count statement, nothing measured
    # Other envelopes are other days: nothing kept for them yet.
    assert kept.load("tpe1", envelope_key([A2], ()), start, end) == []


@pytest.mark.integration
async def test_a_late_sample_has_its_day_measured_again(
    influxd: Influxd, client: InfluxQL, kept: EnvelopeDays
) -> None:
    envs = [RECOMMENDED]
    start, end, now = date(2026, 6, 1), date(2026, 8, 1), datetime(2026, 8, 2, tzinfo=TPE)
    await envelope_stats(client, "tpe1", start, end, TPE, envs, store=kept, now=now)
    writer = InfluxV1Writer(influxd.url, client.database, timeout_s=10)
    try:
        late = Sample(ROOM_B, "env-2", datetime(2026, 7, 1, 9, 5, tzinfo=TPE), 33.0, 50.0)
        assert (await writer.write([_line(late)])).accepted
    finally:
        await writer.close()
    watched = Watched(client)
    months = await envelope_stats(watched, "tpe1", start, end, TPE, envs, store=kept, now=now)
    assert watched.measured() == [(datetime(2026, 7, 1, tzinfo=TPE), datetime(2026, 7, 2, tzinfo=TPE))]
    b7 = next(m for m in months if (m.room, m.month) == (ROOM_B, date(2026, 7, 1)))
    assert (b7.samples, b7.temp_max) == (145, 33.0)
    assert b7.share("recommended").temp == pytest.approx(144 / 145)
    assert months == pytest.approx(await envelope_stats(client, "tpe1", start, end, TPE, envs))


@pytest.mark.integration
async def test_only_whole_ended_days_are_kept(client: InfluxQL, kept: EnvelopeDays) -> None:
    envs = [RECOMMENDED]
    # From 06-30 12:00 (a part of a day) to 07-02, asked on 07-01 at 20:00 (07-01 has not ended).
    start = datetime(2026, 6, 30, 12, tzinfo=TPE)
    now = datetime(2026, 7, 1, 20, tzinfo=TPE)
    months = await envelope_stats(client, "tpe1", start, date(2026, 7, 2), TPE, envs, store=kept, now=now)
    a6 = next(m for m in months if (m.room, m.month) == (ROOM_A, date(2026, 6, 1)))
    assert a6.samples == 72  # 12:00-23:50 of 06-30
    assert kept.load("tpe1", envelope_key(envs, ()), date(2026, 6, 1), date(2026, 8, 1)) == []


@pytest.mark.integration
async def test_excluded_devices_are_left_out(client: InfluxQL) -> None:
    start, end = date(2026, 6, 1), date(2026, 8, 1)
    months = await envelope_stats(client, "tpe1", start, end, TPE, [RECOMMENDED], excluded=["env-2", "x'y"])
    assert {m.room for m in months} == {ROOM_A}
    days = await daily_profile(client, "tpe1", None, start, end, TPE, excluded=["env-1"])
    assert {d.room for d in days} == {ROOM_B}


def test_whole_days_and_runs() -> None:
    lo, hi = datetime(2026, 6, 29, 6, tzinfo=TPE), datetime(2026, 7, 3, tzinfo=TPE)
    assert whole_days(lo, hi, TPE, datetime(2026, 7, 2, 1, tzinfo=TPE)) == [
        date(2026, 6, 30),
        date(2026, 7, 1),
    ]
    assert whole_days(lo, hi, TPE, datetime(2026, 6, 30, 23, 59, tzinfo=TPE)) == []
    # Consecutive days join, but not across the first of a month; the first day is clipped to `lo`.
    days = [date(2026, 6, 29), date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 2)]
    assert runs_of(days, lo, hi, TPE) == [
        (lo, datetime(2026, 7, 1, tzinfo=TPE)),
        (datetime(2026, 7, 1, tzinfo=TPE), hi),
    ]


def test_a_day_round_trips_through_json() -> None:
    day = DayEnvelope(ROOM_A, date(2026, 6, 30), 3, 66.5, 21.0, 23.5, 3, 135.0, 44.0, 46.0, 3, ((3, 2, 2),))
    assert DayEnvelope.from_json(day.room, day.day, day.to_json()) == day
