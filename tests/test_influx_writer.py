"""Both InfluxDB writers against real servers: influxd 1.6 (v1 /write) and VictoriaMetrics (v2 write API)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from ingest.influx_writer import InfluxV1Writer, InfluxV2Writer, WriteOutcome, WriteResult, classify
from testkit.services import Influxd, VictoriaMetrics

pytestmark = pytest.mark.integration

_db_numbers = itertools.count()
TAGS = "site=tpe1,room=mr1,device=ups1,model=eaton-93e"


def _now_ms_as_ns() -> int:
    """A few seconds ago in whole milliseconds: VictoriaMetrics stores ms, so ns digits would be lost."""
    return (time.time_ns() - 10_000_000_000) // 1_000_000 * 1_000_000


def _ups_lines(t0: int) -> list[str]:
    return [
        f'ups,{TAGS} battery_v=54.2,load_pct=37i,on_battery=false,quality="good" {t0}',
        f'ups,{TAGS} battery_v=53.9,load_pct=41i,on_battery=true,quality="good" {t0 + 1_000_000_000}',
    ]


@pytest.fixture
def database(influxd: Influxd) -> str:
    """A fresh database per test on the shared influxd."""
    name = f"w{next(_db_numbers)}_{time.monotonic_ns()}"
    influxd.create_database(name)
    return name


@pytest.fixture
async def v1(influxd: Influxd, database: str) -> AsyncIterator[InfluxV1Writer]:
    writer = InfluxV1Writer(influxd.url, database, timeout_s=5)
    yield writer
    await writer.close()


async def test_v1_lines_are_queryable_with_tags_fields_and_timestamps(
    v1: InfluxV1Writer, influxd: Influxd, database: str
) -> None:
    t0 = time.time_ns()  # full ns precision: influxd keeps it
    result = await v1.write(_ups_lines(t0))
    assert result == WriteResult(WriteOutcome.ACCEPTED, 204)
    rows = influxd.rows("SELECT * FROM ups ORDER BY time", database)
    assert rows == [
        {"time": t0, "battery_v": 54.2, "load_pct": 37, "on_battery": False, "quality": "good",
         "site": "tpe1", "room": "mr1", "device": "ups1", "model": "eaton-93e"},
        {"time": t0 + 1_000_000_000, "battery_v": 53.9, "load_pct": 41, "on_battery": True,
         "quality": "good", "site": "tpe1", "room": "mr1", "device": "ups1", "model": "eaton-93e"},
    ]  # fmt: skip
    # Tags are tags (not fields) on the server side.
    tag_keys = influxd.rows("SHOW TAG KEYS FROM ups", database)
    assert {r["tagKey"] for r in tag_keys} == {"site", "room", "device", "model"}


async def test_v1_gzip_body_is_accepted(influxd: Influxd, database: str) -> None:
    writer = InfluxV1Writer(influxd.url, database, timeout_s=5, gzip=True)
    try:
        assert (await writer.write(_ups_lines(time.time_ns()))).accepted
    finally:
        await writer.close()
    assert len(influxd.rows("SELECT * FROM ups", database)) == 2


async def test_v1_malformed_line_is_rejected_with_the_server_reason(v1: InfluxV1Writer) -> None:
    result = await v1.write(["ups,site=tpe1 battery_v=54.2", "this is not line protocol"])
    assert result.rejected
    assert result.status == 400
    assert "unable to parse" in result.reason


async def test_v1_field_type_conflict_is_rejected_with_the_reason(
    v1: InfluxV1Writer, influxd: Influxd, database: str
) -> None:
    t0 = time.time_ns()
    assert (await v1.write([f"ups,{TAGS} load_pct=37i {t0}"])).accepted
    result = await v1.write([f'ups,{TAGS} load_pct="high" {t0 + 1}', f"ups,{TAGS} load_pct=38i {t0 + 2}"])
    assert result.rejected
    assert result.status == 400
    assert "field type conflict" in result.reason
    # A partial write: influxd stored the good point of the batch, so re-sending it later is harmless.
    rows = influxd.rows("SELECT load_pct FROM ups ORDER BY time", database)
    assert [r["load_pct"] for r in rows] == [37, 38]


async def test_v1_missing_database_is_retryable_not_a_dead_letter(influxd: Influxd) -> None:
    writer = InfluxV1Writer(influxd.url, "no_such_db", timeout_s=5)
    try:
        result = await writer.write(_ups_lines(time.time_ns()))
    finally:
        await writer.close()
    assert result.retryable
    assert result.status == 404
    assert "database not found" in result.reason


async def test_v1_stopped_server_is_retryable_and_restart_keeps_data(influxd_private: Influxd) -> None:
    server = influxd_private
    writer = InfluxV1Writer(server.url, server.database, timeout_s=2)
    try:
        t0 = time.time_ns()
        assert (await writer.write(_ups_lines(t0))).accepted
        server.stop()
        result = await writer.write([f"ups,{TAGS} battery_v=50.0 {t0 + 5_000_000_000}"])
        assert result.retryable
        assert result.status is None
        # The pooled keep-alive connection fails first (ServerDisconnected), a new one is refused.
        assert "Disconnected" in result.reason or "Connect" in result.reason
        again = await writer.write([f"ups,{TAGS} battery_v=50.0 {t0 + 5_000_000_000}"])
        assert again.retryable
        assert "Connect" in again.reason
        server.start()  # same port, same data dir
        assert (await writer.write([f"ups,{TAGS} battery_v=50.0 {t0 + 5_000_000_000}"])).accepted
    finally:
        await writer.close()
    rows = server.rows("SELECT battery_v FROM ups ORDER BY time")
    assert [(r["time"], r["battery_v"]) for r in rows] == [
        (t0, 54.2),
        (t0 + 1_000_000_000, 53.9),
        (t0 + 5_000_000_000, 50.0),
    ]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener accepts TCP connections (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


async def test_v1_timeout_is_retryable(silent_port: int) -> None:
    writer = InfluxV1Writer(f"http://127.0.0.1:{silent_port}", "x", timeout_s=0.5)
    try:
        started = time.monotonic()
        result = await writer.write(["ups v=1 1"])
    finally:
        await writer.close()
    assert result == WriteResult(WriteOutcome.RETRYABLE, None, "timeout")
    assert time.monotonic() - started < 3


async def test_empty_batch_needs_no_request() -> None:
    writer = InfluxV1Writer("http://127.0.0.1:9", "x")  # discard port: a request would fail
    assert (await writer.write([])).accepted
    await writer.close()


async def test_v2_lines_are_queryable_in_victoria_metrics(victoria_metrics: VictoriaMetrics) -> None:
    t0 = _now_ms_as_ns()
    # A device id unique to this test: the VictoriaMetrics server is shared by the session.
    device = f"ups-v2-{time.monotonic_ns()}"
    lines = [line.replace("device=ups1", f"device={device}") for line in _ups_lines(t0)]
    writer = InfluxV2Writer(victoria_metrics.url, bucket="roomguard", org="tpe", token="t0ken", timeout_s=5)
    try:
        assert (await writer.write(lines)).accepted
    finally:
        await writer.close()
    series = victoria_metrics.export(f'{{__name__=~"ups_.*",device="{device}"}}', min_series=4)
    by_name = {s["metric"]["__name__"]: s for s in series}
    # VictoriaMetrics names series `{measurement}_{field}` and keeps tags as labels (docs "How to send
    # data from InfluxDB-compatible agents"); bools become 0/1, string fields are not stored as text.
    assert set(by_name) >= {"ups_battery_v", "ups_load_pct", "ups_on_battery"}
    t0_ms = t0 // 1_000_000
    battery = by_name["ups_battery_v"]
    assert battery["metric"] == {
        "__name__": "ups_battery_v", "site": "tpe1", "room": "mr1", "device": device, "model": "eaton-93e",
    }  # fmt: skip
    assert battery["values"] == [54.2, 53.9]
    assert battery["timestamps"] == [t0_ms, t0_ms + 1000]
    assert by_name["ups_load_pct"]["values"] == [37, 41]
    assert by_name["ups_on_battery"]["values"] == [0, 1]


async def test_v2_gzip_is_accepted(victoria_metrics: VictoriaMetrics) -> None:
    device = f"ups-gz-{time.monotonic_ns()}"
    writer = InfluxV2Writer(victoria_metrics.url, "roomguard", "tpe", "t", timeout_s=5, gzip=True)
    try:
        assert (await writer.write([f"ups,device={device} battery_v=1.5 {_now_ms_as_ns()}"])).accepted
    finally:
        await writer.close()
    assert len(victoria_metrics.export(f'{{device="{device}"}}', min_series=1)) == 1


async def test_v2_stopped_server_is_retryable(victoria_metrics_private: VictoriaMetrics) -> None:
    server = victoria_metrics_private
    writer = InfluxV2Writer(server.url, "roomguard", "tpe", "t", timeout_s=2)
    try:
        assert (await writer.write([f"ups,device=a battery_v=1 {_now_ms_as_ns()}"])).accepted
        server.stop()
        result = await writer.write([f"ups,device=a battery_v=2 {_now_ms_as_ns()}"])
        assert result.retryable
        assert result.status is None
        server.start()
        assert (await writer.write([f"ups,device=a battery_v=3 {_now_ms_as_ns()}"])).accepted
    finally:
        await writer.close()
    [series] = server.export('{__name__="ups_battery_v"}', min_samples=2)
    assert series["values"] == [1, 3]


async def test_v2_timeout_is_retryable(silent_port: int) -> None:
    writer = InfluxV2Writer(f"http://127.0.0.1:{silent_port}", "b", "o", "t", timeout_s=0.5)
    try:
        result = await writer.write(["ups v=1 1"])
    finally:
        await writer.close()
    assert result == WriteResult(WriteOutcome.RETRYABLE, None, "timeout")


# VictoriaMetrics answers 204 even to unparsable lines (it logs and skips them) and influxd 1.6 has no v2
# API, so the v2 writer's 4xx/5xx handling is checked against a stub answering as InfluxDB 2.x does
# (JSON body {"code", "message"}, per the InfluxDB v2 API reference for POST /api/v2/write).
@pytest.fixture
async def influx2_stub() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []
    answers = {
        "bad": (400, {"code": "invalid", "message": 'partial write: field type conflict: input field "v"'}),
        "busy": (503, {"code": "unavailable", "message": "too busy"}),
        "quota": (429, {"code": "too many requests", "message": "org exceeded write limit"}),
        "ok": (204, None),
    }

    async def write(request: web.Request) -> web.Response:
        seen.append(request)
        status, doc = answers[request.query["bucket"]]
        return web.json_response(doc, status=status) if doc else web.Response(status=status)

    app = web.Application()
    app.router.add_post("/api/v2/write", write)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


@pytest.mark.parametrize(
    ("bucket", "outcome", "status", "reason"),
    [
        ("ok", WriteOutcome.ACCEPTED, 204, ""),
        ("bad", WriteOutcome.REJECTED, 400, 'partial write: field type conflict: input field "v"'),
        ("busy", WriteOutcome.RETRYABLE, 503, "too busy"),
        ("quota", WriteOutcome.RETRYABLE, 429, "org exceeded write limit"),
    ],
)
async def test_v2_http_statuses(
    influx2_stub: tuple[str, list[web.Request]], bucket: str, outcome: WriteOutcome, status: int, reason: str
) -> None:
    url, seen = influx2_stub
    writer = InfluxV2Writer(url, bucket, "tpe", "secret-token", timeout_s=5)
    try:
        assert await writer.write(["ups v=1 1"]) == WriteResult(outcome, status, reason)
    finally:
        await writer.close()
    assert seen[0].query["precision"] == "ns"
    assert seen[0].headers["Authorization"] == "Token secret-token"


def test_classify_keeps_config_faults_retryable() -> None:
    assert classify(401, '{"error":"authorization failed"}') == WriteResult(
        WriteOutcome.RETRYABLE, 401, "authorization failed"
    )
    assert classify(413, "too large").rejected
    assert classify(500, "").reason == "HTTP 500"


async def test_secrets_never_in_repr() -> None:
    v1 = InfluxV1Writer("http://127.0.0.1:8086", "db", username="u", password="pw-s3cret")
    v2 = InfluxV2Writer("http://127.0.0.1:8086", "b", "o", token="tok-s3cret")
    assert "s3cret" not in repr(v1)
    assert "s3cret" not in repr(v2)
    await asyncio.gather(v1.close(), v2.close())
