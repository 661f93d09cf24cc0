"""The InfluxQL client and the genset/UPS history queries against a real influxd 1.6 (and a fake 2.x).

Client: bound parameters and quoting with Chinese names and quotes, errors naming their statement,
streaming in chunks, v1 basic auth and v2 token built from the site file, no secret in repr or errors.
History: only a run's samples (with the sample before and after it), the mains alarms selected by name,
UPS samples where the test result changes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from compliance.history import HistoryPoint, genset_runs_raw, ups_test_results_raw
from compliance.influxql import (
    InfluxQL,
    InfluxQueryError,
    number,
    parse_time,
    quote_ident,
    quote_string,
    time_literal,
)
from ingest.influx_writer import InfluxV1Writer
from siteconfig.config import load_site
from testkit.services import Influxd

ROOM = "發電機房"
QUOTED = "UPS\"室'2"
T0 = datetime(2026, 6, 30, 2, 0, tzinfo=UTC)
_db_numbers = itertools.count()


def _ns(ts: datetime) -> int:
    return int(ts.timestamp()) * 1_000_000_000


async def _database(influxd: Influxd, lines: list[str]) -> str:
    name = f"hist{next(_db_numbers)}_{time.monotonic_ns()}"
    influxd.create_database(name)
    writer = InfluxV1Writer(influxd.url, name, timeout_s=10)
    try:
        result = await writer.write(lines)
        assert result.accepted, result.reason
    finally:
        await writer.close()
    return name


# -- pure helpers


def test_quoting_escapes_quotes_backslashes_and_newlines() -> None:
    assert quote_ident('e"nv') == '"e\\"nv"'
    assert quote_string("a'b\\c\nd") == "'a\\'b\\\\c\\nd'"
    assert quote_string("機房A") == "'機房A'"
    with pytest.raises(ValueError, match="carriage return"):
        quote_string("a\rb")
    assert [number(v) for v in (18.0, -12.0, 55.123456789, 0.0, -0.0, 1e-9, 1e-17)] == [
        "18",
        "-12",
        "55.123456789",
        "0",
        "0",
        "0.000000001",
        "0.00000000000000001",
    ]
    with pytest.raises(ValueError, match="finite"):
        number(float("nan"))


def test_time_values_parse_to_aware_utc() -> None:
    assert parse_time(1_782_840_600_123_456_789) == datetime(2026, 6, 30, 17, 30, 0, 123456, tzinfo=UTC)
    assert parse_time("2026-06-30T17:30:00.123456789Z") == datetime(
        2026, 6, 30, 17, 30, 0, 123456, tzinfo=UTC
    )
    assert parse_time("2026-07-01T00:00:00+08:00") == datetime(2026, 6, 30, 16, tzinfo=UTC)
    assert parse_time("2026-06-30T17:30:00.5Z").microsecond == 500000
    assert time_literal(datetime(2026, 7, 1, tzinfo=UTC)) == "2026-07-01T00:00:00.000000Z"
    with pytest.raises(ValueError, match="naive"):
        time_literal(datetime(2026, 7, 1))


# -- the client against influxd


@pytest.fixture
async def env_db(influxd: Influxd) -> AsyncIterator[InfluxQL]:
    lines = [
        f"env,device=env-1,room={ROOM},site=tpe1 temp_c=22.5,rh_pct=45.0 {_ns(T0)}",
        f"env,device=env-2,room={QUOTED},site=tpe1 temp_c=23.5,rh_pct=50.0 {_ns(T0)}",
        *(
            f"env,device=env-3,room=r3,site=tpe1 temp_c={20 + i}.0 {_ns(T0 + timedelta(minutes=i))}"
            for i in range(25)
        ),
    ]
    async with InfluxQL(influxd.url, await _database(influxd, lines), timeout_s=10) as client:
        yield client


@pytest.mark.integration
async def test_bound_parameters_and_quoted_literals_find_chinese_and_quoted_rooms(env_db: InfluxQL) -> None:
    for room in (ROOM, QUOTED):
        bound = await env_db.query("SELECT temp_c FROM env WHERE room = $room", {"room": room})
        literal = await env_db.query(
            f"SELECT temp_c FROM env WHERE {quote_ident('room')} = {quote_string(room)}"
        )
        assert bound == literal
        assert len(bound) == 1
        assert bound[0].columns == ["time", "temp_c"]
        assert bound[0].values == [[T0, 22.5 if room == ROOM else 23.5]]
    grouped = await env_db.query(
        "SELECT last(temp_c) FROM env WHERE time >= $start GROUP BY room", {"start": time_literal(T0)}
    )
    assert {s.tags["room"] for s in grouped} == {ROOM, QUOTED, "r3"}


@pytest.mark.integration
async def test_errors_name_the_statement_and_carry_the_servers_text(env_db: InfluxQL) -> None:
    # A statement error inside the results.
    statement = "SELECT temp_c FROM env WHERE room = $room GROUP BY time(1h)"
    with pytest.raises(InfluxQueryError) as err:
        await env_db.query(statement, {"room": ROOM})
    assert err.value.statement == statement
    assert statement in str(err.value)
    assert "GROUP BY requires at least one aggregate function" in err.value.error
    # A parse error is HTTP 400 with a top-level error.
    with pytest.raises(InfluxQueryError) as err:
        await env_db.query("SELECT FROM env")
    assert err.value.status == 400
    assert "error parsing query" in str(err.value)
    assert "'SELECT FROM env'" in str(err.value)
    # Of several statements, the failing one is named.
    with pytest.raises(InfluxQueryError) as err:
        await env_db.query_each(["SELECT count(temp_c) FROM env", "SELECT temp_c FROM env GROUP BY time(1h)"])
    assert err.value.statement == "SELECT temp_c FROM env GROUP BY time(1h)"
    assert "aggregate" in err.value.error
    # No such database.
    other = InfluxQL(env_db.url, "nosuchdb")
    try:
        with pytest.raises(InfluxQueryError, match="database not found"):
            await other.query("SELECT * FROM env")
    finally:
        await other.close()


@pytest.mark.integration
async def test_query_each_keeps_the_statements_apart(env_db: InfluxQL) -> None:
    counts, rooms = await env_db.query_each(
        ["SELECT count(temp_c) FROM env WHERE room = $room", "SELECT count(temp_c) FROM env GROUP BY room"],
        {"room": "r3"},
    )
    assert [s.values[0][1] for s in counts] == [25]
    assert {s.tags["room"]: s.values[0][1] for s in rooms} == {ROOM: 1, QUOTED: 1, "r3": 25}


@pytest.mark.integration
async def test_stream_yields_chunks_of_a_long_series_in_order(env_db: InfluxQL) -> None:
    pieces = [
        s async for s in env_db.stream("SELECT temp_c FROM env WHERE room = $r", {"r": "r3"}, chunk_size=10)
    ]
    assert [len(p.values) for p in pieces] == [10, 10, 5]
    rows = [row for p in pieces for row in p.values]
    assert [r[0] for r in rows] == [T0 + timedelta(minutes=i) for i in range(25)]
    assert [r[1] for r in rows] == [20.0 + i for i in range(25)]
    with pytest.raises(InfluxQueryError, match="requires at least one aggregate"):
        async for _ in env_db.stream("SELECT temp_c FROM env GROUP BY time(1h)"):
            pass


@pytest.mark.integration
async def test_from_site_v1_uses_the_database_and_basic_auth(
    influxd: Influxd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await _database(influxd, [f"env,device=env-1,room={ROOM},site=s1 temp_c=21.0 {_ns(T0)}"])
    monkeypatch.setenv("T_INFLUX_PASSWORD", "pw-sekrit-1")
    site_file = tmp_path / "site.yaml"
    site_file.write_text(
        "site: {id: s1, name: S}\nrooms: [{id: mr1, name: 機房一}]\n"
        f"influxdb: {{api: v1, url: '{influxd.url}', database: {name}, username: rg, "
        "password: {env: T_INFLUX_PASSWORD}}\n",
        encoding="utf-8",
    )
    async with InfluxQL.from_site(load_site(site_file)) as client:
        assert "pw-sekrit-1" not in repr(client)
        assert client.database == name
        series = await client.query("SELECT temp_c FROM env")  # influxd without auth accepts any
        assert series[0].values == [[T0, 21.0]]


class _FakeInflux2:
    """Answers /query like InfluxDB 2.x through a DBRP mapping; remembers what each request carried."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, str]]] = []
        self.pretty = False  # answer in one indented document, as a server ignoring chunked=true may

    async def handle(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append((dict(request.headers), form))
        if request.headers.get("Authorization") not in ("Token tok-sekrit-2", "Basic cmc6cHctc2Vrcml0LTQ="):
            return web.json_response({"code": "unauthorized", "message": "unauthorized access"}, status=401)
        body: dict[str, Any] = {
            "results": [
                {
                    "statement_id": 0,
                    "series": [
                        {"name": "env", "columns": ["time", "temp_c"], "values": [[1782840600000000000, 22]]}
                    ],
                }
            ]
        }
        return web.json_response(body)


@pytest.fixture
async def fake_influx2() -> AsyncIterator[tuple[_FakeInflux2, str]]:
    fake = _FakeInflux2()
    app = web.Application()
    app.router.add_post("/query", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_from_site_v2_sends_the_token_and_the_bucket_as_db(
    fake_influx2: tuple[_FakeInflux2, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fake_influx2
    monkeypatch.setenv("T_INFLUX_TOKEN", "tok-sekrit-2")
    site_file = tmp_path / "site.yaml"
    site_file.write_text(
        "site: {id: s1, name: S}\nrooms: [{id: mr1, name: 機房一}]\n"
        f"influxdb: {{api: v2, url: '{url}', bucket: roomguard, org: o, token: {{env: T_INFLUX_TOKEN}}}}\n",
        encoding="utf-8",
    )
    async with InfluxQL.from_site(load_site(site_file)) as client:
        assert "tok-sekrit-2" not in repr(client)
        series = await client.query("SELECT temp_c FROM env WHERE room = $room", {"room": ROOM})
    assert series[0].values == [[datetime(2026, 6, 30, 17, 30, tzinfo=UTC), 22]]
    headers, form = fake.requests[0]
    assert headers["Authorization"] == "Token tok-sekrit-2"
    assert form["db"] == "roomguard"
    assert form["epoch"] == "ns"
    assert '"room": "發電機房"' in form["params"]
    assert not {"u", "p"} & set(form)
    # A refused token: the server's text, and never the token, in the error.
    async with InfluxQL(url, "roomguard", token="wrong-sekrit-3") as bad:
        with pytest.raises(InfluxQueryError) as err:
            await bad.query("SELECT 1")
    assert err.value.status == 401
    assert "unauthorized access" in str(err.value)
    assert "sekrit" not in str(err.value)


@pytest.mark.parametrize("pretty", [False, True])
async def test_stream_reads_a_server_that_ignores_chunked(
    fake_influx2: tuple[_FakeInflux2, str], pretty: bool
) -> None:
    fake, url = fake_influx2
    fake.pretty = pretty
    async with InfluxQL(url, "roomguard", token="tok-sekrit-2") as client:
        pieces = [s async for s in client.stream("SELECT temp_c FROM env")]
    assert [p.values for p in pieces] == [[[datetime(2026, 6, 30, 17, 30, tzinfo=UTC), 22]]]
    assert fake.requests[0][1]["chunked"] == "true"


async def test_v1_credentials_go_in_basic_auth_never_in_the_form(
    fake_influx2: tuple[_FakeInflux2, str],
) -> None:
    fake, url = fake_influx2
    async with InfluxQL(url, "roomguard", username="rg", password="pw-sekrit-4") as client:
        assert "pw-sekrit-4" not in repr(client)
        await client.query("SELECT temp_c FROM env")
    headers, form = fake.requests[0]
    assert headers["Authorization"] == "Basic cmc6cHctc2Vrcml0LTQ="  # rg:pw-sekrit-4
    assert not {"u", "p"} & set(form)
    assert "sekrit" not in str(form)


# -- genset and UPS history


def _genset(device: str, ts: datetime, **fields: Any) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(v)
        return f'"{v}"'

    body = ",".join(f"{k}={fmt(v)}" for k, v in fields.items())
    return f'genset,device={device},model=dse-7320,room={ROOM},site=tpe1 {body},quality="good" {_ns(ts)}'


def _minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)


def _genset_lines() -> list[str]:
    lines = []
    # gen-1 reports an engine state: at rest 0-9, mains fail at 10, pre_start 10, warming_up 11, running
    # 12-20 (a transfer break reads 0 % at 15), cooling_down 21, at rest from 22 to 59.
    for i in range(60):
        state = {10: "pre_start", 11: "warming_up", 21: "cooling_down"}.get(
            i, "running" if 12 <= i <= 20 else "stopped"
        )
        load = 40.0 if 12 <= i <= 20 and i != 15 else 0.0
        fields: dict[str, Any] = {
            "control_mode": "auto",
            "engine_state": state,
            "gen_load_pct": load,
            "gen_power_w": load * 1000.0,
            "alarm_low_fuel_level": "not_active",
        }
        if i == 13:
            fields["alarm_mains_fail_quality"] = "comm_error"  # the alarm itself not read at this poll
        else:
            fields["alarm_mains_fail"] = 10 <= i <= 18
        fields["alarm_mains_failed_to_close"] = "not_active"
        lines.append(_genset("gen-1", _minute(i), **fields))
    # gen-2 never runs.
    lines += [
        _genset("gen-2", _minute(i), control_mode="auto", engine_state="stopped", gen_load_pct=0.0)
        for i in range(60)
    ]
    # gen-3 has no engine state: load > 0 from 30 to 35 with a 0 % poll at 33, and a second run 50-51.
    for i in range(25, 60):
        load = 55.0 if (30 <= i <= 35 and i != 33) or 50 <= i <= 51 else 0.0
        lines.append(_genset("gen-3", _minute(i), control_mode="manual", gen_load_pct=load))
    return lines


@pytest.mark.integration
async def test_genset_history_returns_each_run_with_its_neighbours_only(influxd: Influxd) -> None:
    async with InfluxQL(influxd.url, await _database(influxd, _genset_lines())) as client:
        points = await genset_runs_raw(client, "tpe1", T0, T0 + timedelta(hours=1))
        assert await genset_runs_raw(client, "tpe1", T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == []

    by_device: dict[str, list[HistoryPoint]] = {}
    for p in points:
        by_device.setdefault(p.device, []).append(p)
    assert set(by_device) == {"gen-1", "gen-3"}
    assert all(p.room == ROOM for p in points)

    gen1 = by_device["gen-1"]
    # The sample at rest before (9), pre_start to cooling_down (10-21), the first at rest after (22).
    assert [p.ts for p in gen1] == [_minute(i) for i in range(9, 23)]
    assert [p.fields["engine_state"] for p in gen1[:3]] == ["stopped", "pre_start", "warming_up"]
    assert gen1[-1].fields["engine_state"] == "stopped"
    assert gen1[6].fields["gen_load_pct"] == 0.0  # the transfer break at minute 15 is kept
    assert gen1[3].fields == {
        "control_mode": "auto",
        "engine_state": "running",
        "gen_load_pct": 40.0,
        "gen_power_w": 40000.0,
        "alarm_mains_fail": True,
        "alarm_mains_failed_to_close": "not_active",
    }
    # Selected by name: the mains alarms, not the fuel alarm, never a *_quality field.
    assert gen1[4].fields["alarm_mains_fail"] is None
    assert not any(k.startswith("alarm_low") or k.endswith("_quality") for p in points for k in p.fields)

    gen3 = by_device["gen-3"]
    # Two runs 14 min apart (more than the 5 min join gap): two spans, each with its neighbours.
    assert [p.ts for p in gen3] == [_minute(i) for i in (*range(29, 37), *range(49, 53))]
    assert gen3[4].fields["gen_load_pct"] == 0.0  # minute 33 inside the first run
    assert gen3[0].fields["engine_state"] is None


@pytest.mark.integration
async def test_genset_history_clips_to_the_window(influxd: Influxd) -> None:
    async with InfluxQL(influxd.url, await _database(influxd, _genset_lines())) as client:
        points = await genset_runs_raw(client, "tpe1", _minute(14), _minute(40))
    gen1 = [p.ts for p in points if p.device == "gen-1"]
    # Running from the window's start: no sample before it is fetched.
    assert gen1 == [_minute(i) for i in range(14, 23)]
    gen3 = [p.ts for p in points if p.device == "gen-3"]
    assert gen3 == [_minute(i) for i in range(29, 37)]


def _ups(device: str, room: str, i: int, result: str | None, source: str | None) -> str:
    fields = []
    if result is None:
        fields.append('test_result_quality="comm_error"')
    else:
        fields.append(f'test_result="{result}"')
    if source is not None:
        fields.append(f'test_source="{source}"')
    fields.append("on_battery=false")
    return f"ups,device={device},model=eaton-93e,room={room},site=tpe1 {','.join(fields)} {_ns(_minute(i))}"


@pytest.mark.integration
async def test_ups_history_keeps_the_samples_where_the_result_changes(influxd: Influxd) -> None:
    seq: list[tuple[str | None, str | None]] = [
        ("none", "none"),
        ("none", "none"),
        ("in_progress", "internal"),  # 2
        ("in_progress", "internal"),
        ("passed", "internal"),  # 4
        ("passed", "internal"),
        (None, None),  # a failed poll changes nothing
        ("passed", None),  # test_source not read: not a change either
        ("in_progress", "protocol"),  # 8: a second test, started by a command
        ("passed", "protocol"),  # 9
        ("passed", "protocol"),
        ("failed", "local_ui"),  # 11: a result without in_progress seen in between
        ("failed", "local_ui"),
    ]
    lines = [_ups("ups-1", QUOTED, i, r, s) for i, (r, s) in enumerate(seq)]
    lines += [_ups("ups-2", "機房A", i, "passed", "internal") for i in range(5)]
    async with InfluxQL(influxd.url, await _database(influxd, lines)) as client:
        points = await ups_test_results_raw(client, "tpe1", T0, T0 + timedelta(hours=1))
    got = [(p.device, p.room, p.ts, p.fields["test_result"], p.fields["test_source"]) for p in points]
    assert got == [
        ("ups-1", QUOTED, _minute(0), "none", "none"),
        ("ups-1", QUOTED, _minute(2), "in_progress", "internal"),
        ("ups-1", QUOTED, _minute(4), "passed", "internal"),
        ("ups-1", QUOTED, _minute(8), "in_progress", "protocol"),
        ("ups-1", QUOTED, _minute(9), "passed", "protocol"),
        ("ups-1", QUOTED, _minute(11), "failed", "local_ui"),
        ("ups-2", "機房A", _minute(0), "passed", "internal"),
    ]
