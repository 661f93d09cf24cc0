# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The CC-16000 evidence pack on a real SQLite records database: files, sheets, CSV, PDF text, manifest,
the period's bounds, void records, a broken audit chain, no database, and one pack over real InfluxDB."""

from __future__ import annotations

import io
import re
import subprocess
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, text

import compliance.pack as pack_module
from compliance.envelope import envelope_key
from compliance.envelope_store import EnvelopeDayRow, EnvelopeDays
from compliance.export import MANIFEST_NAME, verify_manifest
from compliance.items import ENVIRONMENT, GENERATOR_TEST, ITEMS, UPS_TEST
from compliance.kinds import (
    KINDS,
    Drill,
    DutyShift,
    GeneratorTest,
    Incident,
    Inspection,
    UpsTest,
    VendorVisit,
    labels,
)
from compliance.pack import build_pack, site_envelopes
from compliance.result import CheckResult, Evidence
from compliance.store import Records
from records.audit import Actor
from records.db import make_engine, session_factory
from records.migrate import upgrade
from siteconfig.config import SiteConfig, load_site
from testkit.example_site import SECRETS, example_site
from testkit.services import Influxd, free_tcp_port

TZ = ZoneInfo("Asia/Taipei")
START = datetime(2026, 1, 1, tzinfo=TZ)
END = datetime(2026, 7, 1, tzinfo=TZ)  # the first half of 2026: 2026-01-01 .. 2026-06-30
NOW = datetime(2026, 7, 2, 9, 0, tzinfo=TZ)
WHO = Actor("王小明", "cli:edge-1/wang")
BOM = b"\xef\xbb\xbf"


def at(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TZ)


def minimal_site(**extra: object) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": {"id": "tpe-hq", "name": "台北總公司 Taipei Head Office", "timezone": "Asia/Taipei"},
            "rooms": [{"id": "mr1", "name": "主機房 Machine Room 1"}],
            **extra,
        }
    )


def gen_test(when: datetime, minutes: float, counts: bool) -> GeneratorTest:
    return GeneratorTest(
        device="gen-1",
        started_at=when,
        ended_at=when + timedelta(minutes=minutes + 5),
        on_load_minutes=minutes,
        min_load_pct=38.0,
        avg_load_pct=41.26,
        trigger="test_mode",
        counts=counts,
        reason="≥ 30 % for ≥ 30 min" if counts else "too short 時間不足",
        source="telemetry",
    )


@pytest.fixture
def records(tmp_path: Path) -> Records:
    engine = make_engine(tmp_path / "records.db")
    upgrade(engine)
    db = Records(session_factory(engine))
    put = [
        # Before and after the period: never in the pack.
        (gen_test(at(12, 10, year=2025), 45, True), at(12, 10, 12, year=2025)),
        (
            DutyShift(operator="舊班表", starts_at=at(11, 1, 8, year=2025), ends_at=at(11, 1, 16, year=2025)),
            at(11, 1, year=2025),
        ),
        (gen_test(at(7, 5), 50, True), at(7, 5, 12)),
        # In the period.
        (gen_test(at(2, 10), 35.5, True), at(2, 10, 12)),
        (gen_test(at(3, 10), 12, False), at(3, 10, 12)),
        (
            UpsTest(
                device="ups-1", tested_at=at(2, 1), test_type="self_test", result="passed", source="telemetry"
            ),
            at(2, 1, 11),
        ),
        (
            Inspection(
                system="fire",
                inspected_at=at(3, 1),
                inspector="李消防",
                licence="消防設備師 123",
                result="pass",
            ),
            at(3, 1, 12),
        ),
        (
            Drill(
                drill_id="DR-2026-1",
                held_at=at(4, 15),
                plan="機房復原計畫",
                scenario="主機房斷電 power loss",
                result="partial",
                findings="UPS 切換延遲",
            ),
            at(4, 15, 12),
        ),
        (
            Incident(
                incident_id="INC-1",
                summary="空調故障 CRAC failure",
                started_at=at(2, 11),
                resolved_at=at(2, 11, 12),
                cause="壓縮機過熱",
                corrective_action="更換壓縮機",
                preventive_action="每月保養",
                owner="陳工程師",
                due_at=at(2, 25),
                closed_at=at(2, 20),
                closed_by="張主管",
            ),
            at(2, 20, 12),
        ),
        # Began before the period and is still open: an open review is evidence of the period.
        (
            Incident(
                incident_id="INC-0",
                summary="漏水告警 leak alarm",
                started_at=at(12, 20, year=2025),
                due_at=at(1, 3),
                owner="林組長",
            ),
            at(12, 20, 12, year=2025),
        ),
        (
            VendorVisit(
                visit_id="V-001", company="台灣空調", person="黃技師", in_at=at(5, 5), out_at=at(5, 5, 15)
            ),
            at(5, 5, 16),
        ),
    ]
    for record, when in put:
        db.put_all([record], WHO, when)
    db.void("vendor_visit", "V-001", WHO, "重複登錄 duplicate entry", at(5, 6))

    def result(item: str, status: str, reason: str) -> CheckResult:
        return CheckResult(item, status, f"{reason}（中）", reason, (Evidence("generator_test", "gen-1@x"),))  # type: ignore[arg-type]

    db.save_results([result(GENERATOR_TEST.key, "fail", "no test yet")], at(12, 31, year=2025))
    db.save_results([result(GENERATOR_TEST.key, "pass", "monthly test ok")], at(2, 10, 13))
    db.save_results([result(UPS_TEST.key, "warn", "ups test due soon")], at(6, 20))
    db.save_results([result(ENVIRONMENT.key, "fail", "after the period")], at(7, 3))
    return db


async def make_pack(site: SiteConfig, records: Records, tmp_path: Path) -> Path:
    messages: list[str] = []
    path = await build_pack(
        site,
        records,
        START,
        END,
        tmp_path / "out" / "pack.zip",
        prepared_by="王小明",
        progress=messages.append,
        now=NOW,
    )
    assert len(messages) >= 7
    return path


def member(zip_path: Path, name: str) -> bytes:
    with zipfile.ZipFile(zip_path) as zf:
        return zf.read(name)


def workbook(zip_path: Path, name: str) -> Any:
    return load_workbook(io.BytesIO(member(zip_path, name)))


def pdf_text(zip_path: Path, tmp_path: Path) -> str:
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(member(zip_path, "summary.pdf"))
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True)
    return out.stdout.decode()


def squeezed(text_: str) -> str:
    """Text without whitespace: table cells wrap Chinese between any two characters."""
    return re.sub(r"\s+", "", text_)


def sheet_rows(ws: Any) -> list[list[Any]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


@pytest.fixture
async def pack(records: Records, tmp_path: Path) -> Path:
    return await make_pack(minimal_site(), records, tmp_path)


EXPECTED_FILES = {
    "board.xlsx",
    "records.xlsx",
    "environment.xlsx",
    "audit.xlsx",
    "summary.pdf",
    MANIFEST_NAME,
    "csv/board.csv",
    "csv/check_history.csv",
    "csv/environment.csv",
    "csv/environment_daily.csv",
    "csv/audit.csv",
    "csv/audit_verification.csv",
    *(f"csv/{k}.csv" for k in KINDS),
}


def test_the_pack_has_every_file_and_verifies(pack: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(pack) as zf:
        assert set(zf.namelist()) == EXPECTED_FILES
        assert zf.testzip() is None
    assert verify_manifest(pack) == []
    # Nothing of the build is left beside the zip.
    assert sorted(p.name for p in pack.parent.iterdir()) == ["pack.zip"]


def test_every_workbook_has_its_sheets_with_zh_and_en_header_rows(pack: Path) -> None:
    expected = {
        "board.xlsx": ["封面", "CC-16000 看板", "結果變更紀錄"],
        "records.xlsx": ["封面", *(m.ZH for m in KINDS.values())],
        "environment.xlsx": ["封面", "溫濕度月統計", "溫濕度日統計"],
        "audit.xlsx": ["封面", "稽核軌跡", "稽核鏈驗證"],
    }
    for name, sheets in expected.items():
        wb = workbook(pack, name)
        assert wb.sheetnames == sheets, name
        cover = dict(sheet_rows(wb["封面"]))
        assert cover["期間 Period"] == "2026-01-01 – 2026-06-30 (Asia/Taipei)"
        assert cover["製表人 Prepared by"] == "王小明"
    records_wb = workbook(pack, "records.xlsx")
    for model in KINDS.values():
        head = sheet_rows(records_wb[model.ZH])[:2]
        fields = labels(model)
        assert head[0][1 : 1 + len(fields)] == [zh for _, zh, _ in fields]
        assert head[1][1 : 1 + len(fields)] == [en for _, _, en in fields]
        assert (head[0][0], head[1][0]) == ("紀錄鍵值", "Record key (ref)")
        assert {"作廢", "作廢原因", "建立人", "更新時間"} <= set(head[0])
        assert {"Void", "Void reason", "Created by", "Updated at"} <= set(head[1])
    board = sheet_rows(workbook(pack, "board.xlsx")["CC-16000 看板"])
    assert board[0][:5] == ["條文", "項目代碼", "項目", "項目（英文）", "結果"]
    assert board[1][:5] == ["Clause", "Item key", "Item (zh)", "Item", "Status"]
    audit = sheet_rows(workbook(pack, "audit.xlsx")["稽核軌跡"])
    assert audit[1] == [
        "Seq", "At", "Actor", "Source", "Action", "Entity", "Entity id", "Before", "After", "Note",
        "Previous hash", "Hash", "Chain check",
    ]  # fmt: skip


def test_every_csv_starts_with_the_utf8_bom(pack: Path) -> None:
    with zipfile.ZipFile(pack) as zf:
        for name in zf.namelist():
            if name.endswith(".csv"):
                data = zf.read(name)
                assert data.startswith(BOM), name
                assert data[3:].decode("utf-8").split("\r\n")[0].count(" / ") >= 2, name


def test_the_board_is_the_one_at_the_end_of_the_period(pack: Path) -> None:
    rows = sheet_rows(workbook(pack, "board.xlsx")["CC-16000 看板"])[2:]
    assert [r[1] for r in rows] == [i.key for i in ITEMS]
    by_key = {r[1]: r for r in rows}
    assert by_key[GENERATOR_TEST.key][4] == "pass"
    assert by_key[UPS_TEST.key][4] == "warn"
    # Stored after the end: not on this board.
    assert by_key[ENVIRONMENT.key][4] == "unknown"
    assert by_key[GENERATOR_TEST.key][10] == "generator_test:gen-1@x"
    history = sheet_rows(workbook(pack, "board.xlsx")["結果變更紀錄"])[2:]
    # The result in force at the start, then the two changes of the period; none after it.
    assert [(r[3], r[6], r[1]) for r in history] == [
        (GENERATOR_TEST.key, "fail", True),
        (GENERATOR_TEST.key, "pass", False),
        (UPS_TEST.key, "warn", False),
    ]
    csv_text = member(pack, "csv/board.csv").decode("utf-8-sig")
    assert "發電機定期測試" in csv_text


def test_only_records_of_the_period_are_in_it_and_a_void_one_is_marked(pack: Path) -> None:
    gen = sheet_rows(workbook(pack, "records.xlsx")[GeneratorTest.ZH])[2:]
    assert [r[0] for r in gen] == ["gen-1@2026-02-10T02:00:00Z", "gen-1@2026-03-10T02:00:00Z"]
    gen_csv = member(pack, "csv/generator_test.csv").decode("utf-8-sig")
    assert "2025-12-10" not in gen_csv
    assert "2026-07-05" not in gen_csv
    assert "舊班表" not in member(pack, "csv/duty.csv").decode("utf-8-sig")
    # Times are local: 10:00 in Taipei.
    assert gen[0][2] == datetime(2026, 2, 10, 10, 0)

    visits_ws = workbook(pack, "records.xlsx")[VendorVisit.ZH]
    head, *visits = sheet_rows(visits_ws)[1:]
    (visit,) = visits
    assert visit[head.index("Void")] is True
    assert visit[head.index("Void reason")] == "重複登錄 duplicate entry"
    assert visit[head.index("Version")] == 2
    assert visit[head.index("Voided by")] == "王小明"

    incidents = sheet_rows(workbook(pack, "records.xlsx")[Incident.ZH])[2:]
    # The open review from December is still part of this period.
    assert sorted(r[0] for r in incidents) == ["INC-0", "INC-1"]


def test_the_audit_excerpt_is_the_period_and_the_chain_verifies(pack: Path) -> None:
    rows = sheet_rows(workbook(pack, "audit.xlsx")["稽核軌跡"])[2:]
    entities = {(r[4], r[5], r[6]) for r in rows}
    assert ("void", "compliance.vendor_visit", "V-001") in entities
    assert ("create", "compliance.generator_test", "gen-1@2026-02-10T02:00:00Z") in entities
    assert not any("2025-12-10" in str(r[6]) or "2026-07-05" in str(r[6]) for r in rows)
    assert {r[12] for r in rows} == {"pass"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", r[11]) for r in rows)
    verdict = sheet_rows(workbook(pack, "audit.xlsx")["稽核鏈驗證"])[2:]
    assert verdict[0][:2] == ["chain", "pass"]
    # The whole chain (12 writes) is verified; the excerpt has the 8 written in the period.
    assert "audit chain intact: 12 entries verified" in verdict[0][4]
    assert len(rows) == 8


def test_the_pdf_names_the_items_the_period_and_the_people(pack: Path, tmp_path: Path) -> None:
    raw = pdf_text(pack, tmp_path)
    flat = squeezed(raw)
    for item in ITEMS:
        assert squeezed(item.title_zh) in flat, item.title_zh
    for word in ("發電機", "不斷電", "溫濕度", "異常事件檢討", "稽核軌跡", "簽核"):
        assert word in flat
    assert "2026-01-01–2026-06-30(Asia/Taipei)" in flat
    assert "台北總公司TaipeiHeadOffice(tpe-hq)" in flat
    assert "王小明" in flat
    # The environment section says why there are no charts, rather than leaving them out silently.
    assert "noenvironmentaldata" in flat
    assert "sitefilehasnoinfluxdbsection" in flat
    # Tests: the generator tests with their minutes and the status of each; incidents with their state.
    # (Cells wrap, and pdftotext reads a table row by row: whole words only.)
    for word in ("35.5", "逾期未結案", "overdue", "已結案", "張主管", "壓縮機過熱", "主機房斷電", "李消防"):
        assert word in flat, word
    assert "auditchainintact" in flat


def test_a_changed_member_is_named_by_the_manifest(pack: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(pack) as src, zipfile.ZipFile(tampered, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "csv/generator_test.csv":
                data = data.replace(b"35.5", b"36.5", 1)
            dst.writestr(info, data)
    problems = verify_manifest(tampered)
    assert len(problems) == 1
    assert problems[0].startswith("csv/generator_test.csv: changed")


async def test_a_chain_edited_in_sqlite_is_reported_broken_naming_the_entry(
    records: Records, tmp_path: Path
) -> None:
    with records.sessions.begin() as s:
        seq = s.execute(
            text("SELECT seq FROM audit_log WHERE entity_id = 'gen-1@2026-03-10T02:00:00Z'")
        ).scalar_one()
        s.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = :seq"), {"seq": seq})
    path = await make_pack(minimal_site(), records, tmp_path)
    verdict = sheet_rows(workbook(path, "audit.xlsx")["稽核鏈驗證"])[2:]
    assert verdict[0][:2] == ["chain", "fail"]
    assert f"entry {seq} edited" in verdict[0][4]
    problems = [r for r in verdict if r[0] == "problem"]
    assert [(r[2], r[3]) for r in problems] == [(seq, "edited")]
    assert f"entry {seq} (" in problems[0][4]
    entries = sheet_rows(workbook(path, "audit.xlsx")["稽核軌跡"])[2:]
    assert [r[0] for r in entries if r[12] == "fail"] == [seq]
    flat = squeezed(pdf_text(path, tmp_path))
    assert "auditchainBROKEN" in flat
    assert "稽核鏈已遭破壞" in flat
    assert f"entry{seq}edited" in flat
    # The pack itself is intact: the manifest is over what the pack says, broken chain and all.
    assert verify_manifest(path) == []


async def test_an_unreachable_database_gives_a_pack_that_says_so(records: Records, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_tcp_port()}"
    site = minimal_site(influxdb={"url": url, "api": "v1", "database": "roomguard"})
    path = await make_pack(site, records, tmp_path)
    rows = sheet_rows(workbook(path, "environment.xlsx")["溫濕度月統計"])[2:]
    assert len(rows) == 1
    note = rows[0][-1]
    assert note.startswith("無環境資料 / no environmental data: InfluxDB " + url)
    assert "unreachable" in note
    assert "unreachable" in squeezed(pdf_text(path, tmp_path))
    assert verify_manifest(path) == []


async def test_same_data_same_bytes_and_a_failure_leaves_the_old_pack(
    records: Records, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = (await make_pack(minimal_site(), records, tmp_path)).read_bytes()
    path = await make_pack(minimal_site(), records, tmp_path)
    assert path.read_bytes() == first

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pack_module, "write_zip", broken)
    with pytest.raises(OSError, match="disk full"):
        await make_pack(minimal_site(), records, tmp_path)
    assert path.read_bytes() == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["pack.zip"]


async def test_a_period_that_ends_before_it_starts_is_refused(records: Records, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ends"):
        await build_pack(minimal_site(), records, END, START, tmp_path / "x.zip", prepared_by="x")
    with pytest.raises(ValueError, match="naive"):
        await build_pack(
            minimal_site(), records, START.replace(tzinfo=None), END, tmp_path / "x.zip", prepared_by="x"
        )
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.integration
async def test_with_influxdb_the_pack_has_environment_numbers_and_charts(
    influxd: Influxd, records: Records, tmp_path: Path
) -> None:
    from ingest.influx_writer import InfluxV1Writer

    database = f"pack_{time.monotonic_ns()}"
    influxd.create_database(database)
    site_path, _ = example_site(
        tmp_path / "site.yaml",
        influxdb=f"influxdb:\n  url: {influxd.url}\n  api: v1\n  database: {database}\n",
    )
    site = load_site(site_path)
    # Three days in February and two in March, every 10 min, two sensors in mr1: 22-26 °C at 45 % RH,
    # except the afternoon of 2026-03-02 at 29 °C (outside recommended, inside A1).
    lines = []
    for day in (at(2, 26, 0), at(2, 27, 0), at(2, 28, 0), at(3, 1, 0), at(3, 2, 0)):
        for i in range(144):
            ts = day + timedelta(minutes=10 * i)
            hot = ts.date() == at(3, 2).date() and 12 <= ts.hour < 18
            temp = 29.0 if hot else 22.0 + 4 * (i % 12) / 11
            ns = int(ts.timestamp()) * 1_000_000_000
            for device in ("env-1", "env-2"):
                tags = f"device={device},room=mr1,site={site.site.id}"
                lines.append(f'env,{tags} temp_c={temp},rh_pct=45.0,quality="good" {ns}')
            # A hot-aisle probe (not an inlet: the example site excludes it) at 36 °C: never counted.
            tags = f"device=th-a-hot,room=mr1,site={site.site.id}"
            lines.append(f'env,{tags} temp_c=36.0,rh_pct=30.0,quality="good" {ns}')
    writer = InfluxV1Writer(influxd.url, database, timeout_s=10)
    try:
        for n in range(0, len(lines), 5000):
            assert (await writer.write(lines[n : n + 5000])).accepted
    finally:
        await writer.close()

    began = time.monotonic()
    path = await build_pack(site, records, START, END, tmp_path / "pack.zip", prepared_by="王小明", now=NOW)
    elapsed = time.monotonic() - began
    print(f"pack with InfluxDB: {elapsed:.2f} s, {path.stat().st_size} bytes")
    assert verify_manifest(path) == []

    months = sheet_rows(workbook(path, "environment.xlsx")["溫濕度月統計"])
    head = months[1]
    assert months[2][-1] == "不計入（非進風口感測器） not inlet sensors, left out: th-a-hot, th-b-hot"
    rows = {(r[0], r[2]): dict(zip(head, r, strict=True)) for r in months[3:]}
    # Every room in every month; those without samples say so.
    assert list(rows) == [(room, f"2026-0{m}") for m in range(1, 7) for room in ("mr1", "gen1")]
    empty = [r for r in rows.values() if r["Temperature samples"] == 0]
    assert len(empty) == 10
    assert all(r["Note"] == "無環境資料 / no environmental data: 無樣本 no samples" for r in empty)
    feb, mar = rows["mr1", "2026-02"], rows["mr1", "2026-03"]
    assert feb["Temperature samples"] == 3 * 144 * 2
    assert feb["Inside recommended %, dry bulb"] == 100.0
    assert feb["Inside A1 %, both"] == 100.0
    assert (feb["Min temperature °C"], feb["Max temperature °C"]) == (22.0, 26.0)
    # Six hours of 2026-03-02 at 29 °C: 2 sensors x 36 of the 576 samples of March outside recommended.
    assert mar["Inside recommended %, dry bulb"] == 87.5
    assert mar["Inside A1 %, dry bulb"] == 100.0
    assert mar["Max temperature °C"] == 29.0
    assert mar["Note"] is None
    daily = sheet_rows(workbook(path, "environment.xlsx")["溫濕度日統計"])[2:]
    assert [(r[0], r[2]) for r in daily] == [("mr1", datetime(2026, 2, d)) for d in (26, 27, 28)] + [
        ("mr1", datetime(2026, 3, d)) for d in (1, 2)
    ]

    flat = squeezed(pdf_text(path, tmp_path))
    assert "主機房MachineRoom12026-02溫度temperature" in flat
    assert "主機房MachineRoom12026-03相對濕度relativehumidity" in flat
    assert "ASHRAErecommended建議18–27°C" in flat
    # gen1 (the generator room) has no env sensor: said so, not left out.
    assert "發電機室GeneratorRoom" in flat
    assert "此機房期間內無樣本" in flat

    # The five days were measured once and kept in the records database.
    kept = EnvelopeDays(records.sessions)
    key = envelope_key(list(site_envelopes(site)), site.compliance.environment.exclude_devices)
    first = {(d.day, d.room): d for d in kept.load(site.site.id, key, START.date(), END.date())}
    assert sorted(first) == [
        (datetime(2026, m, d).date(), "mr1") for m, d in ((2, 26), (2, 27), (2, 28), (3, 1), (3, 2))
    ]
    # A reading that arrives late (an outbox flushed after an outage) in a kept day: the next pack sees
    # the count change and measures that day again; the other days are reused as they were.
    late = at(2, 27, 3) + timedelta(minutes=5)
    writer = InfluxV1Writer(influxd.url, database, timeout_s=10)
    try:
        tags = f"device=env-1,room=mr1,site={site.site.id}"
        ns = int(late.timestamp()) * 1_000_000_000
        assert (await writer.write([f'env,{tags} temp_c=31.0,rh_pct=45.0,quality="good" {ns}'])).accepted
    finally:
        await writer.close()
    later = NOW + timedelta(days=1)
    again = await build_pack(
        site, records, START, END, tmp_path / "again.zip", prepared_by="王小明", now=later
    )
    feb2 = {
        (r[0], r[2]): dict(zip(head, r, strict=True))
        for r in sheet_rows(workbook(again, "environment.xlsx")["溫濕度月統計"])[3:]
    }["mr1", "2026-02"]
    assert feb2["Temperature samples"] == 3 * 144 * 2 + 1
    assert feb2["Max temperature °C"] == 31.0
    assert feb2["Inside recommended %, dry bulb"] == round(100 * 864 / 865, 2)
    second = {(d.day, d.room): d for d in kept.load(site.site.id, key, START.date(), END.date())}
    assert second[datetime(2026, 2, 27).date(), "mr1"].temp_n == 289
    assert {k: v for k, v in second.items() if k[0] != datetime(2026, 2, 27).date()} == {
        k: v for k, v in first.items() if k[0] != datetime(2026, 2, 27).date()
    }
    with records.sessions() as s:
        measured = dict(s.execute(select(EnvelopeDayRow.day, EnvelopeDayRow.measured_at)).tuples().all())
    assert measured.pop(datetime(2026, 2, 27).date()) == later.astimezone(UTC)
    assert set(measured.values()) == {NOW.astimezone(UTC)}


@pytest.mark.integration
async def test_the_compliance_process_keeps_the_ended_days_measured(
    influxd: Influxd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compliance.process import ComplianceProcess
    from ingest.influx_writer import InfluxV1Writer

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    database = f"keep_{time.monotonic_ns()}"
    influxd.create_database(database)
    site_path, _ = example_site(
        tmp_path / "site.yaml",
        influxdb=f"influxdb:\n  url: {influxd.url}\n  api: v1\n  database: {database}\n",
    )
    site = load_site(site_path)
    # 2026-06-29 .. 2026-07-01 local, hourly, one inlet sensor; asked on 07-01 at 15:00.
    tags = f"device=th-a01,room=mr1,site={site.site.id}"
    lines = [
        f"env,{tags} temp_c=23.0,rh_pct=50.0 {int(ts.timestamp()) * 10**9}"
        for ts in (datetime(2026, 6, 29, tzinfo=TZ) + timedelta(hours=h) for h in range(63))
    ]
    writer = InfluxV1Writer(influxd.url, database, timeout_s=10)
    try:
        assert (await writer.write(lines)).accepted
    finally:
        await writer.close()
    now = datetime(2026, 7, 1, 15, tzinfo=TZ)
    process = ComplianceProcess(site, tmp_path / "state", clock=lambda: now)
    assert await process.measure_days_once() == 2  # 06-29 and 06-30: today has not ended
    kept = EnvelopeDays(process.records.sessions)
    key = envelope_key(list(site_envelopes(site)), site.compliance.environment.exclude_devices)
    days = kept.load(site.site.id, key, date(2025, 1, 1), date(2027, 1, 1))
    # Today is measured by each report that asks for it, until it has ended.
    assert [(d.day, d.temp_n) for d in days] == [(date(2026, 6, 29), 24), (date(2026, 6, 30), 24)]
    assert process.snapshot()["days_measured_at"] == now.isoformat()
    assert process.snapshot()["days_error"] is None
