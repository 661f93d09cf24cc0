"""Retention policies and 1-minute rollups: the statements (pure), and against a real InfluxDB 1.6 with
its continuous-query service on: `roomguard ingest SITE setup-db` twice, readings written the way ingest
writes them, the CQ's rollup points, and `roomguard ingest SITE rollup` for an older range."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer

from collector.targets import TargetBuilder
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality
from devices.registry import ProfileRegistry
from devices.yamlload import ConfigError
from ingest.cli import parse_when
from ingest.influx_writer import InfluxV1Writer
from ingest.lineproto import LineEncoder
from ingest.retention import (
    Action,
    Policy,
    RetentionSpec,
    RetentionUnsupported,
    ServerState,
    backfill_ranges,
    backfill_statements,
    cq_statement,
    fresh_statements,
    parse_go_duration,
    plan,
)
from siteconfig.config import SiteConfig, load_site
from testkit.example_site import ROOT, SECRETS, example_site
from testkit.services import Influxd, serve

SPEC = RetentionSpec("roomguard")
UPS_CQ = (
    'CREATE CONTINUOUS QUERY "rollup_1m_ups" ON "roomguard" RESAMPLE EVERY 1m FOR 10m BEGIN '
    'SELECT mean(*), min(*), max(*), count(*), last(*) INTO "roomguard"."rollup_1m"."ups" '
    'FROM "roomguard"."raw"."ups" GROUP BY time(1m), * fill(none) END'
)


# ------------------------------------------------------------------------------------------- pure


def test_fresh_statements() -> None:
    statements = fresh_statements(SPEC)
    assert statements[:2] == [
        'CREATE DATABASE "roomguard" WITH DURATION 400d REPLICATION 1 NAME "raw"',
        'CREATE RETENTION POLICY "rollup_1m" ON "roomguard" DURATION 1830d REPLICATION 1',
    ]
    assert UPS_CQ in statements
    # One continuous query per measurement ingest writes (docs/influx-schema.md: one per device class).
    assert len(statements) == 2 + len(DeviceClass)
    for cls in DeviceClass:
        assert any(f'INTO "roomguard"."rollup_1m"."{cls.value}"' in s for s in statements)


def test_quoting_of_odd_names() -> None:
    spec = RetentionSpec('room "guard"', raw_policy="raw-x", resample_for="2h")
    text = cq_statement(spec, "env")
    assert 'ON "room \\"guard\\"" RESAMPLE EVERY 1m FOR 2h' in text
    assert 'FROM "room \\"guard\\""."raw-x"."env"' in text


def _server_text(statement: str) -> str:
    """What SHOW CONTINUOUS QUERIES prints for a statement (influxd 1.6 quotes only where needed)."""
    return statement.replace('"', "")


def _in_place(spec: RetentionSpec) -> ServerState:
    policies = {
        spec.raw_policy: Policy(spec.raw_policy, 400 * 86400, True),
        "rollup_1m": Policy("rollup_1m", 1830 * 86400, False),
    }
    cqs = {f"rollup_1m_{c.value}": _server_text(cq_statement(spec, c.value)) for c in DeviceClass}
    return ServerState(True, policies, cqs)


def test_plan_keeps_what_is_in_place() -> None:
    steps = plan(SPEC, _in_place(SPEC))
    assert {s.action for s in steps} == {Action.KEEP}
    assert not [st for s in steps for st in s.statements]


def test_plan_alters_policies_and_replaces_changed_queries() -> None:
    state = _in_place(SPEC)
    policies = {**state.policies, "raw": Policy("raw", 30 * 86400, False)}
    cqs = {**state.continuous_queries, "rollup_1m_ups": _server_text(UPS_CQ.replace("FOR 10m", "FOR 5m"))}
    cqs.pop("rollup_1m_env")
    steps = {s.what: s for s in plan(SPEC, ServerState(True, policies, cqs))}
    raw = steps["retention policy raw (400d)"]
    assert raw.action is Action.ALTER
    assert raw.statements == ('ALTER RETENTION POLICY "raw" ON "roomguard" DURATION 400d DEFAULT',)
    assert "was 30d, not the default" in raw.note
    ups = steps["continuous query rollup_1m_ups"]
    assert ups.action is Action.REPLACE
    assert ups.statements == ('DROP CONTINUOUS QUERY "rollup_1m_ups" ON "roomguard"', UPS_CQ)
    assert steps["continuous query rollup_1m_env"].action is Action.CREATE
    assert steps["continuous query rollup_1m_door"].action is Action.KEEP


def test_plan_for_a_database_with_autogen_says_where_old_points_are() -> None:
    state = ServerState(True, {"autogen": Policy("autogen", 0, True)})
    steps = plan(SPEC, state)
    raw = next(s for s in steps if s.what.startswith("retention policy raw"))
    assert raw.action is Action.CREATE
    assert raw.statements == (
        'CREATE RETENTION POLICY "raw" ON "roomguard" DURATION 400d REPLICATION 1 DEFAULT',
    )
    assert "autogen" in raw.note
    assert "--source-policy autogen" in raw.note
    # Adopting the existing policy instead: raw_policy: autogen in the site file.
    adopt = plan(RetentionSpec("roomguard", raw_policy="autogen"), state)
    assert adopt[1].statements == ('ALTER RETENTION POLICY "autogen" ON "roomguard" DURATION 400d DEFAULT',)


def test_go_durations() -> None:
    assert parse_go_duration("9600h0m0s") == 400 * 86400
    assert parse_go_duration("0s") == 0
    assert parse_go_duration("1h30m") == 5400
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration("400d")


def test_backfill_ranges_are_whole_minutes_in_chunks() -> None:
    t = datetime(2026, 3, 1, 8, 0, 30, tzinfo=UTC)
    assert backfill_ranges(t, t + timedelta(minutes=2)) == [
        (t.replace(second=0), t.replace(second=0) + timedelta(minutes=3))
    ]
    day = backfill_ranges(t.replace(second=0), t.replace(second=0) + timedelta(hours=13))
    assert [hi - lo for lo, hi in day] == [timedelta(hours=6), timedelta(hours=6), timedelta(hours=1)]
    with pytest.raises(ValueError, match="empty range"):
        backfill_ranges(t, t)
    statements = backfill_statements(SPEC, t, t + timedelta(minutes=1), measurements=["env"])
    assert statements == [
        'SELECT mean(*), min(*), max(*), count(*), last(*) INTO "roomguard"."rollup_1m"."env" '
        'FROM "roomguard"."raw"."env" WHERE time >= \'2026-03-01T08:00:00Z\' AND time < '
        "'2026-03-01T08:02:00Z' GROUP BY time(1m), * fill(none)"
    ]


def _site_text(tmp_path: Path, influxdb: str) -> Path:
    path, _ = example_site(tmp_path / "site.yaml", influxdb=influxdb)
    return path


def test_retention_settings_are_validated_with_their_field(tmp_path: Path) -> None:
    bad = _site_text(
        tmp_path,
        "influxdb:\n  url: http://127.0.0.1:1\n  api: v1\n  database: roomguard\n"
        "  retention: {raw: 400days}\n",
    )
    with pytest.raises(
        ConfigError, match=r"site\.yaml:\d+:\d+: influxdb\.retention\.raw: not a duration.*400d"
    ):
        load_site(bad)
    short = _site_text(
        tmp_path,
        "influxdb:\n  url: http://127.0.0.1:1\n  api: v1\n  database: roomguard\n"
        "  retention: {rollup: 30m, resample_for: 2d}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_site(short)
    text = str(err.value)
    assert "influxdb.retention.rollup: InfluxDB keeps a retention policy at least 1h" in text
    assert "influxdb.retention.resample_for: at most 1d" in text
    v2 = _site_text(
        tmp_path,
        "influxdb:\n  url: http://127.0.0.1:1\n  api: v2\n  bucket: b\n  retention: {raw: 30d}\n",
    )
    with pytest.raises(ConfigError, match=r"influxdb\.retention.*bucket's retention period"):
        load_site(v2)


def test_defaults_keep_existing_site_files_valid() -> None:
    site = load_site(ROOT / "deploy" / "examples" / "site.yaml")
    assert RetentionSpec.from_site(site) == RetentionSpec("roomguard")


def test_v2_sites_are_told_about_buckets_and_tasks(tmp_path: Path) -> None:
    section = "influxdb:\n  url: http://127.0.0.1:1\n  api: v2\n  bucket: b\n  org: o\n"
    site = load_site(_site_text(tmp_path, section))
    with pytest.raises(RetentionUnsupported, match="bucket's retention period and downsample with a task"):
        RetentionSpec.from_site(site)
    out = _roomguard(tmp_path / "site.yaml", "setup-db", check=False)
    assert out.returncode == 2
    assert "InfluxDB 1.x only (api: v1)" in out.stderr


def test_print_needs_no_server_and_no_secrets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMGUARD_")}
    out = subprocess.run(
        [sys.executable, "-m", "roomguard", "ingest", "deploy/examples/site.yaml", "setup-db", "--print"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [s + ";" for s in fresh_statements(SPEC)]


def test_when_options() -> None:
    tz = ZoneInfo("Asia/Taipei")
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_when("6h", tz, now) == now - timedelta(hours=6)
    assert parse_when("2026-03-01T08:00", tz, now) == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert parse_when("2026-03-01T08:00Z", tz, now) == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(typer.BadParameter, match="duration ago"):
        parse_when("yesterday", tz, now)


# ------------------------------------------------------------------------------------- real influxd


def _env() -> dict[str, str]:
    return {**os.environ, **SECRETS}


def _roomguard(site: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "roomguard", "ingest", str(site), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if check:
        assert out.returncode == 0, f"roomguard ingest {args}: {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def _refs(site: SiteConfig) -> dict[str, DeviceRef]:
    """The refs the collector gives three of the example site's devices (real classes, models, tags)."""
    builder = TargetBuilder(site, ProfileRegistry.builtin())
    return {d: builder.target(site.device(d)).ref for d in ("th-a01", "ups-1", "door-main")}


def _polls(refs: dict[str, DeviceRef], minute: datetime, k: int) -> list[PollResult]:
    """Six polls 10 s apart of each device in `minute`; values depend on `k` and the poll."""
    out: list[PollResult] = []
    for j in range(6):
        ts = minute + timedelta(seconds=10 * j, microseconds=123)
        env = (
            Metric("temp_c", 20.0 + k + j / 10),
            Metric("rh_pct", 40.0 + j),
            Metric("dew_point_c", None, Quality.UNAVAILABLE),
        )
        ups = (
            Metric("battery_charge_pct", 90.0 + j),
            Metric("on_battery", j == 3),
            Metric("output_source", "battery" if j == 5 else "normal"),
        )
        out += [
            PollResult(refs["th-a01"], ts, env),
            PollResult(refs["ups-1"], ts, ups),
            PollResult(refs["door-main"], ts, (Metric("door_open", False),)),
        ]
    compliance = DeviceRef(
        refs["ups-1"].site, "_compliance", "ups_self_test", DeviceClass.COMPLIANCE, "roomguard"
    )
    out.append(PollResult(compliance, minute, (Metric("status", "pass"), Metric("days_to_due", 12.0 + k))))
    return out


def _write(influx: Influxd, polls: list[PollResult]) -> None:
    """Write as ingest does: its line encoder, its v1 writer, no retention policy (the default one)."""
    encoder = LineEncoder()

    async def go() -> None:
        writer = InfluxV1Writer(influx.url, "roomguard")
        try:
            result = await writer.write([encoder.encode(p) for p in polls])
            assert result.accepted, result
        finally:
            await writer.close()

    asyncio.run(go())


def _expect(minute: datetime, k: int) -> dict[str, dict[str, Any]]:
    temps = [20.0 + k + j / 10 for j in range(6)]
    ns = int(minute.timestamp()) * 10**9
    return {
        "th-a01": {
            "time": ns,
            "mean_temp_c": pytest.approx(sum(temps) / 6),
            "min_temp_c": pytest.approx(min(temps)),
            "max_temp_c": pytest.approx(max(temps)),
            "mean_rh_pct": pytest.approx(42.5),
            "count_quality": 6,
            "count_temp_c": 6,
            "count_dew_point_c_quality": 6,
            "last_quality": "good",
            "zone": "row-a",
            "rack": "a01",
        },
        "ups-1": {
            "time": ns,
            "mean_battery_charge_pct": pytest.approx(92.5),
            "min_on_battery": False,
            "max_on_battery": True,
            "last_output_source": "battery",
            "count_quality": 6,
        },
    }


def _cqs(influx: Influxd) -> dict[str, str]:
    """The continuous queries of the database `roomguard`: name → statement."""
    series = influx.query("SHOW CONTINUOUS QUERIES", database=None)["results"][0]["series"]
    return {n: q for s in series if s["name"] == "roomguard" for n, q in s.get("values", [])}


def _rollup(influx: Influxd, measurement: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    q = (
        f'SELECT * FROM "rollup_1m"."{measurement}" WHERE time >= {int(lo.timestamp())}s '
        f"AND time < {int(hi.timestamp())}s"
    )
    return influx.rows(q, database="roomguard")


def _by_device(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["time"]):
        out.setdefault(r["device"], []).append(r)
    return out


def _check(rows: list[dict[str, Any]], minutes: list[datetime], first_k: int) -> None:
    got = _by_device(rows)
    for i, minute in enumerate(minutes):
        for device, expected in _expect(minute, first_k + i).items():
            row = got[device][i]
            assert {key: row.get(key) for key in expected} == expected, (device, minute, row)


@pytest.fixture
def influxd_cq(tmp_path: Path) -> Iterator[Influxd]:
    """An InfluxDB 1.6 of this test alone, with its continuous-query service on."""
    yield from serve(Influxd(tmp_path / "influxd", continuous_queries=True))


@pytest.mark.integration
def test_setup_db_continuous_queries_and_backfill(
    influxd_cq: Influxd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    influx = influxd_cq
    section = (
        f"influxdb:\n  url: {influx.url}\n  api: v1\n  database: roomguard\n  username: roomguard\n"
        "  password: {env: ROOMGUARD_INFLUX_PASSWORD}\n"
    )
    site_path = _site_text(tmp_path, section)
    for name, value in SECRETS.items():  # the TargetBuilder resolves the site's SNMP secrets
        monkeypatch.setenv(name, value)
    site = load_site(site_path)

    first = _roomguard(site_path, "setup-db").stdout
    assert "created 已建立" in first, first
    assert "rollup_1m_compliance" in first, first
    policies = {r["name"]: r for r in influx.rows('SHOW RETENTION POLICIES ON "roomguard"', database=None)}
    assert policies["raw"]["duration"] == "9600h0m0s"
    assert policies["raw"]["default"] is True
    assert policies["rollup_1m"]["duration"] == "43920h0m0s"
    assert policies["rollup_1m"]["default"] is False
    assert sorted(_cqs(influx)) == sorted(f"rollup_1m_{c.value}" for c in DeviceClass)
    cqs = _cqs(influx)
    second = _roomguard(site_path, "setup-db").stdout
    assert "nothing to change" in second, second
    steps = second.splitlines()[:-1]
    assert len(steps) == 3 + len(DeviceClass), second
    assert all(line.startswith("unchanged 不變 ") for line in steps), second
    assert _cqs(influx) == cqs

    refs = _refs(site)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    recent = [now - timedelta(minutes=m) for m in (3, 2, 1)]  # closed minutes, written "late"
    older = [now - timedelta(hours=3) + timedelta(minutes=m) for m in range(3)]  # beyond resample_for
    _write(influx, [p for k, minute in enumerate(recent) for p in _polls(refs, minute, k)])
    _write(influx, [p for k, minute in enumerate(older) for p in _polls(refs, minute, 10 + k)])

    # The CQ recomputes the last 10 minutes at each minute boundary: the next one is at most 60 s away.
    # Waits for complete points (6 polls each): a run that overlapped the write is redone a minute later.
    deadline = time.monotonic() + 150
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = _rollup(influx, "env", recent[0], now) + _rollup(influx, "ups", recent[0], now)
        if len(rows) >= 2 * len(recent) and all(r["count_quality"] == 6 for r in rows):
            break
        time.sleep(1)
    assert len(rows) >= 2 * len(recent), (
        f"no 1-minute rollups of {recent[0]:%H:%M}-{now:%H:%M} after 150 s: {rows}\n"
        f"CQs: {_cqs(influx)}\ninfluxd log:\n{influx.log_tail()}"
    )
    _check(rows, recent, 0)
    compliance = _rollup(influx, "compliance", recent[0], now)
    assert [(r["last_status"], r["mean_days_to_due"]) for r in compliance] == [
        ("pass", 12.0),
        ("pass", 13.0),
        ("pass", 14.0),
    ]
    door = _rollup(influx, "door", recent[0], now)
    assert [(r["max_door_open"], r["count_door_open"], r["device"]) for r in door] == [
        (False, 6, "door-main")
    ] * 3

    # The older range is outside every CQ window; the backfill command rolls it up the same way.
    assert _rollup(influx, "env", older[0], older[-1] + timedelta(minutes=1)) == []
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    back = _roomguard(
        site_path,
        "rollup",
        "--from",
        f"{older[0]:{fmt}}",
        "--to",
        f"{older[-1] + timedelta(seconds=30):{fmt}}",
    )
    assert "points written" in back.stdout, back.stdout
    end = older[-1] + timedelta(minutes=1)
    _check(_rollup(influx, "env", older[0], end) + _rollup(influx, "ups", older[0], end), older, 10)
    # Backfilling what the CQ already computed writes the very same points.
    before = {m: _rollup(influx, m, recent[0], now) for m in ("env", "ups", "door", "compliance")}
    _roomguard(site_path, "rollup", "--from", f"{recent[0]:{fmt}}", "--to", f"{now:{fmt}}")
    assert {m: _rollup(influx, m, recent[0], now) for m in before} == before
