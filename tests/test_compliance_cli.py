"""`roomguard compliance SITE …` and `roomguard audit SITE …` on a real records database (SQLite file):
records by hand and by import (Big5, all or nothing, idempotent), an incident review closed only with
cause and measures, the audit chain broken by a direct SQLite edit, an evidence pack that verifies until
one byte of it changes, and the monthly time inside the ASHRAE envelopes computed by InfluxDB."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.influx_writer import InfluxV1Writer
from roomguard import app
from testkit.services import Influxd

SITE = """\
site: {id: cli-test, name: 查核指令測試}
rooms:
  - {id: mr1, name: 主機房}
"""
HEADER = [
    "登記編號",
    "廠商",
    "人員",
    "已查驗證件",
    "維護申請單號",
    "陪同人員",
    "核准人",
    "進入時間",
    "離開時間",
    "攜入物品",
]
VISITS = [
    [
        "V-001",
        "台灣電力維護股份有限公司",
        "張技師",
        "是",
        "WO-1201",
        "王小明",
        "林主任",
        "2026-11-02 10:00",
        "2026-11-02 11:30",
        "筆電;三用電表",
    ],
    [
        "V-002",
        "冷凍空調工程行",
        "李師傅",
        "是",
        "WO-1202",
        "陳大文",
        "林主任",
        "2026-11-05 22:00",
        "2026-11-05 23:40",
        "",
    ],
]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE, encoding="utf-8")
    return path


def run(*args: str | Path, code: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def visits_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *rows])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def test_a_big5_export_imports_once_and_a_bad_row_imports_nothing(site: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    big5 = visits_csv(tmp_path / "visits.csv", VISITS, "cp950")
    out = run("compliance", site, "import", "vendor_visit", big5, "--by", "林主任", "--state-dir", state)
    assert "cp950" in out
    assert "created 2" in out
    again = run("compliance", site, "import", "vendor_visit", big5, "--by", "林主任", "--state-dir", state)
    assert "unchanged 2" in again

    bad_row = ["V-003", "某公司", "某人", "也許", "WO-1", "王小明", "林主任", "2026-11-06 10:00", "", ""]
    new_good = ["V-004", *VISITS[1][1:]]
    bad = visits_csv(tmp_path / "bad.csv", [VISITS[0], new_good, bad_row], "utf-8")
    err = run(
        "compliance", site, "import", "vendor_visit", bad, "--by", "林主任", "--state-dir", state, code=2
    )
    assert "row 4" in err
    assert "id_checked" in err
    assert "'也許'" in err
    listed = run("compliance", site, "list", "vendor_visit", "--state-dir", state)
    assert "V-004" not in listed  # the good row of the failed file was not imported either
    assert len([line for line in listed.splitlines() if line.startswith("{")]) == 2


def test_record_review_and_the_audit_chain(site: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = run(
        "compliance",
        site,
        "record",
        "duty",
        "值班人員=王小明",
        "starts_at=2026-12-01 08:00",
        "ends_at=2026-12-01 20:00",
        "--by",
        "林主任",
        "--state-dir",
        state,
    )
    assert out.startswith("created duty")
    run(
        "compliance",
        site,
        "record",
        "incident",
        "incident_id=INC-1",
        "summary=市電中斷 / utility outage",
        "started_at=2026-12-01 02:15",
        "due_at=2026-12-15 02:15",
        "--by",
        "林主任",
        "--state-dir",
        state,
    )
    refused = run(
        "compliance",
        site,
        "review",
        "INC-1",
        "--cause",
        "市電中斷",
        "--close",
        "--by",
        "林主任",
        "--state-dir",
        state,
        code=2,
    )
    assert "corrective_action" in refused
    closed = run(
        "compliance",
        site,
        "review",
        "INC-1",
        "--cause",
        "市電中斷",
        "--corrective",
        "確認切換",
        "--preventive",
        "每月測試",
        "--close",
        "--by",
        "林主任",
        "--state-dir",
        state,
    )
    assert "closed" in closed
    ok = run("audit", site, "verify", "--state-dir", state)
    assert "intact" in ok
    assert "3 entries" in ok

    with sqlite3.connect(state / "records.db") as db:
        db.execute("UPDATE audit_log SET actor = '某人' WHERE seq = 2")
    broken = run("audit", site, "verify", "--state-dir", state, code=1)
    assert "entry 2" in broken
    assert "edited" in broken


def test_an_evidence_pack_verifies_until_one_byte_changes(site: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    run(
        "compliance",
        site,
        "record",
        "drill",
        "drill_id=D-2026",
        "held_at=2026-11-20 14:00",
        "plan=機房復原計畫",
        "scenario=市電中斷",
        "result=pass",
        "--by",
        "林主任",
        "--state-dir",
        state,
    )
    pack = tmp_path / "pack.zip"
    out = run(
        "compliance",
        site,
        "evidence-pack",
        "--from",
        "2026-07-01",
        "--to",
        "2026-12-31",
        "--out",
        pack,
        "--by",
        "林主任",
        "--state-dir",
        state,
    )
    assert "pack.zip" in out
    assert "verified" in run("compliance", "verify-pack", pack)

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(pack) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("drill.csv"):
                data = data[:-2] + bytes([data[-2] ^ 1]) + data[-1:]
            dst.writestr(info, data)
    err = run("compliance", "verify-pack", tampered, code=1)
    assert "drill.csv" in err
    assert "NOT verified" in err


async def test_environment_shares_come_from_the_database(tmp_path: Path, influxd: Influxd) -> None:
    database = "cli_env"
    influxd.create_database(database)
    start = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    lines = [
        "env,device=th-1,model=sht20-xy-md02,room=mr1,site=cli-test "
        f'temp_c={temp},rh_pct=45.0,quality="good" '
        f"{int((start + timedelta(minutes=i)).timestamp()) * 10**9}"
        for i, temp in enumerate([22.0] * 100 + [29.0] * 20)
    ]
    writer = InfluxV1Writer(influxd.url, database, timeout_s=10)
    try:
        assert (await writer.write(lines)).accepted
    finally:
        await writer.close()
    path = tmp_path / "site.yaml"
    path.write_text(
        SITE + f"influxdb: {{url: 'http://127.0.0.1:{influxd.port}', api: v1, database: {database}}}\n",
        encoding="utf-8",
    )
    out = await asyncio.to_thread(
        run, "compliance", path, "environment", "--from", "2026-11-01", "--to", "2026-11-30"
    )
    row = next(line for line in out.splitlines() if line.startswith("mr1"))
    assert "2026-11" in row
    assert " 120 " in row
    # Recommended: 20 of 120 samples at 29 °C are too warm, and at 45 % RH their dew point (15.9 °C) is
    # above 15 °C too: temperature, humidity and both are 100/120 each.
    assert row.count(" 83.3%") == 3
    assert "100.0%" in row  # allowable A1
    assert "22.0/23.2/29.0" in row


def test_update_adds_the_witness_to_a_detected_generator_test(site: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    run(
        "compliance",
        site,
        "record",
        "generator_test",
        "device=gen-1",
        "started_at=2026-11-03 10:00",
        "on_load_minutes=35",
        "min_load_pct=40",
        "avg_load_pct=41",
        "trigger=test_mode",
        "counts=true",
        "source=telemetry",
        "--by",
        "roomguard",
        "--state-dir",
        state,
    )
    ref = "gen-1@2026-11-03T02:00:00Z"
    out = run(
        "compliance",
        site,
        "update",
        "generator_test",
        ref,
        "見證人=王小明",
        "technician=大同發電機 張技師",
        "--by",
        "林主任",
        "--state-dir",
        state,
    )
    assert out.startswith("updated generator_test")
    listed = run("compliance", site, "list", "generator_test", "--state-dir", state)
    assert '"witness": "王小明"' in listed
    assert '"source": "telemetry"' in listed  # the rest unchanged
    key_change = run(
        "compliance",
        site,
        "update",
        "generator_test",
        ref,
        "device=gen-2",
        "--by",
        "林主任",
        "--state-dir",
        state,
        code=2,
    )
    assert "void it and record it anew" in key_change
    unknown = run(
        "compliance",
        site,
        "update",
        "generator_test",
        ref,
        "colour=red",
        "--by",
        "林主任",
        "--state-dir",
        state,
        code=2,
    )
    assert "witness" in unknown  # the valid fields are listed
    audit = run("audit", site, "show", "--state-dir", state)
    assert '"action": "update"' in audit
    assert '"actor": "林主任"' in audit
