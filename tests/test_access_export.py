"""The access-review export: sheets A-F, XLSX headers, CSV round trip, PDF text, manifest, masking."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from compliance.access.export import (
    RISK,
    ChangeLogEntry,
    Reconciliation,
    mask_credential,
    review_tables,
    write_review_export,
)
from compliance.access.flags import FLAG_CODES
from compliance.access.model import Badge, Grant, Holder, Schedule
from compliance.access.review import Quarter, Review, decide, review_id, review_lines, sign_off
from compliance.export import MANIFEST_NAME, Table, cell_text, read_csv, verify_manifest

TZ = ZoneInfo("Asia/Taipei")
QUARTER = Quarter.parse("2026Q1", TZ)
NOW = datetime(2026, 4, 2, 9, 0, tzinfo=TZ)
BOM = b"\xef\xbb\xbf"
SITE, COMPANY = "台北總部機房", "範例證券股份有限公司"
NAMES = {"E001": "王小明", "E002": "陳美玲", "E003": "林志豪", "V001": "張大同"}
FLAGGED = ("陳美玲", "林志豪", "張大同")
SHEETS = ["A_cover", "B_summary", "C_detail", "D_exceptions", "E_change_log", "F_reconciliation"]


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def grant(gid: str, person: str, card: str, zones: tuple[str, ...], since: datetime, **kw: Any) -> Grant:
    base = {"requester": "王小明", "approver": "趙主管", "implementer": "李管理", "ticket": f"REQ-{gid}"}
    return Grant(gid, person, card, zones, since, **(base | kw))


HOLDERS = {
    "E001": Holder("E001", NAMES["E001"], "employee", "資訊部"),
    "E002": Holder("E002", NAMES["E002"], "employee", "資訊部", left_at=at(2, 15, 18)),
    "E003": Holder("E003", NAMES["E003"], "employee", "總務部"),
    "V001": Holder("V001", NAMES["V001"], "vendor", "台達電子"),
}
G1 = grant("G1", "E001", "CARD-00011111", ("機房",), at(1, 1, 0, year=2025))
G2 = grant("G2", "E002", "CARD-00022222", ("機房",), at(6, 1, 0, year=2025))  # leaver: LEAVER_ACTIVE
G3 = grant("G3", "E003", "CARD-00033333", ("機房",), at(1, 1, 0, year=2025))  # never used: DORMANT_90D
# A vendor let in alone at the UPS room: UNESCORTED_VENDOR; granted in the quarter: added.
G4 = grant("G4", "V001", "CARD-00044444", ("UPS室",), at(2, 1, 0), valid_to=at(6, 30, 0), work_order="WO-77")
G0 = grant(
    "G0", "E003", "CARD-00099999", ("電池室",), at(1, 1, 0, year=2024), valid_to=at(12, 1, 0, year=2025)
)
EVENTS = [
    Badge(at(2, 10), "機房門", "機房", "CARD-00022222"),
    Badge(at(3, 5, 14), "UPS室門", "UPS室", "CARD-00044444"),
    Badge(at(3, 30), "機房門", "機房", "CARD-00011111"),
]
# The previous review had G1 on office hours (modified since) and G0 (gone since).
PREVIOUS = {"G0": G0, "G1": replace(G1, schedule=Schedule.parse("mon-fri 08:00-18:00")), "G2": G2, "G3": G3}
# Out of time order on purpose: sheet E sorts by time.
UNMATCHED = ChangeLogEntry(at(3, 20, 22), "李管理", "modify", "E001", "CARD-00011111", "機房", "", "24x7")
MATCHED = ChangeLogEntry(at(2, 1, 9), "李管理", "grant", "V001", "CARD-00044444", "UPS室", ticket="REQ-G4",
                         matched=True)  # fmt: skip
CHANGES = [UNMATCHED, MATCHED]


def open_review() -> Review:
    lines, removed = review_lines(HOLDERS, [G1, G2, G3, G4], EVENTS, QUARTER, NOW, TZ, previous=PREVIOUS)
    return Review(review_id("tpe-hq", QUARTER.label), "tpe-hq", QUARTER.label, QUARTER.start, QUARTER.end,
                  NOW, "王小明", tuple(lines), tuple(removed),
                  previous_review_id="ACR-2025Q4-tpe-hq")  # fmt: skip


def signed_review() -> Review:
    review = open_review()
    for gid, decision, reason in [
        ("G1", "keep", ""),
        ("G2", "revoke", "已離職 left the company"),
        ("G3", "keep", "備援人員 standby staff"),
        ("G4", "change", "須陪同 escort required"),
    ]:
        review = decide(review, gid, decision, reason, "趙主管", NOW + timedelta(hours=1))
    return sign_off(review, "黃稽核", NOW + timedelta(hours=2), "季度覆核完成")


def tables_of(review: Review) -> dict[str, Table]:
    tables = review_tables(review, site_name=SITE, company=COMPANY, tz=TZ, change_log=CHANGES)
    return {t.name: t for t in tables}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("export") / "access-review"
    files = write_review_export(signed_review(), folder, site_name=SITE, company=COMPANY, tz=TZ,
                                change_log=CHANGES)  # fmt: skip
    return folder, files


def squeezed(text: str) -> str:
    """Text without whitespace: table cells wrap Chinese between any two characters."""
    return re.sub(r"\s+", "", text)


def test_the_review_has_the_flags_the_export_is_about() -> None:
    review = signed_review()
    assert [(ln.row_no, ln.grant.grant_id, [f.code for f in ln.flags]) for ln in review.lines] == [
        (1, "G1", []),
        (2, "G2", ["LEAVER_ACTIVE"]),
        (3, "G3", ["DORMANT_90D"]),
        (4, "G4", ["UNESCORTED_VENDOR"]),
    ]
    assert [ln.change_type for ln in review.lines] == ["modified", "none", "none", "added"]
    assert [g.grant_id for g in review.removed] == ["G0"]


def test_every_flag_has_a_risk_rating() -> None:
    assert set(FLAG_CODES) <= RISK.keys()
    assert {k for k, v in RISK.items() if v == "high"} == {
        "LEAVER_ACTIVE", "EXPIRED_ACTIVE", "SHARED_CARD", "UNESCORTED_VENDOR",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "masked"), [("CARD-00011111", "****1111"), ("12345", "****2345"), ("1234", "****"), ("", "")]
)
def test_mask_credential(raw: str, masked: str) -> None:
    assert mask_credential(raw) == masked


def test_cover_and_summary() -> None:
    t = tables_of(signed_review())
    assert list(t) == SHEETS
    (cover,) = t["A_cover"].rows
    assert cover["report_id"] == "ACR-2026Q1-tpe-hq"
    assert (cover["company"], cover["site_name"], cover["site_id"]) == (COMPANY, SITE, "tpe-hq")
    assert (cover["period_start"], cover["period_end"]) == (date(2026, 1, 1), date(2026, 3, 31))
    assert cover["control_refs"] == "CC-16000 (一)(十三); 資通安全檢查機制 點6; ISO/IEC 27001 A.5.18 / A.7.2"
    assert cover["reviewed_by"] == ["黃稽核"]
    assert cover["status"] == "已簽核 signed"
    assert "MANIFEST.sha256" in str(cover["manifest_sha256"])
    metrics = {r["metric"]: r["value"] for r in t["B_summary"].rows}
    assert metrics["active_grants_start"] == 3  # G4 starts in February
    assert metrics["active_grants_end"] == 4
    assert (metrics["granted_in_period"], metrics["modified_in_period"], metrics["revoked_in_period"]) == (
        1,
        1,
        0,
    )
    assert (metrics["holders_employee"], metrics["holders_vendor"]) == (3, 1)
    assert (metrics["reviewed_count"], metrics["review_coverage_pct"]) == (4, 100.0)
    assert (metrics["flag_DORMANT_90D"], metrics["flag_LEAVER_ACTIVE"], metrics["flag_SHARED_CARD"]) == (
        1,
        1,
        0,
    )
    assert (metrics["exceptions_found"], metrics["exceptions_open"], metrics["exceptions_accepted"]) == (
        4,
        3,
        1,
    )
    assert metrics["vendor_grants_active"] == 1
    assert metrics["leaver_revocation_max_hours"] == 46 * 24 - 9  # 02-15 18:00 to the snapshot 04-02 09:00
    assert metrics["previous_review_id"] == "ACR-2025Q4-tpe-hq"


def test_detail_rows() -> None:
    rows = tables_of(signed_review())["C_detail"].rows
    assert [r["row_no"] for r in rows] == [1, 2, 3, 4, 5]
    leaver = rows[1]
    assert (leaver["holder_name"], leaver["credential_id"]) == ("陳美玲", "****2222")
    assert (leaver["hr_status"], leaver["hr_status_date"]) == ("離職 left", at(2, 15, 18))
    assert (leaver["flags"], leaver["decision"]) == (["LEAVER_ACTIVE"], "撤銷 revoke")
    assert leaver["remediation_action"] == "撤銷權限 revoke the grant"
    assert rows[0]["change_type"] == "修改 modified"
    assert str(rows[0]["before_after"]).startswith("機房 | mon-fri 08:00-18:00 |")
    assert str(rows[0]["before_after"]).endswith("→ 機房 | 24x7 | 2025-01-01..—")
    assert (rows[3]["holder_type"], rows[3]["change_type"]) == ("廠商 vendor", "新增 added")
    removed = rows[4]
    assert (removed["grant_id"], removed["holder_name"], removed["change_type"]) == (
        "G0",
        "林志豪",
        "移除 removed",
    )
    assert all(re.fullmatch(r"\*{4}\d{4}", str(r["credential_id"])) for r in rows)


def test_exception_register() -> None:
    rows = tables_of(signed_review())["D_exceptions"].rows
    by_id = {r["exception_id"]: r for r in rows}
    assert list(by_id) == [
        "EX-0002-LEAVER_ACTIVE",
        "EX-0003-DORMANT_90D",
        "EX-0004-UNESCORTED_VENDOR",
        "EX-E002-UNMATCHED_CHANGE",  # the later of the two changes, once sheet E is in time order
    ]
    leaver = by_id["EX-0002-LEAVER_ACTIVE"]
    assert (leaver["row_ref"], leaver["risk_rating"], leaver["status"]) == (2, "high", "open")
    assert (leaver["detected_at"], leaver["due_date"]) == (NOW, date(2026, 4, 16))
    assert leaver["action"] == "撤銷 revoke: 已離職 left the company"
    assert leaver["owner"] == "趙主管"
    dormant = by_id["EX-0003-DORMANT_90D"]
    assert (dormant["risk_rating"], dormant["status"], dormant["due_date"]) == ("low", "accepted", None)
    unmatched = by_id["EX-E002-UNMATCHED_CHANGE"]
    assert (unmatched["row_ref"], unmatched["holder_name"], unmatched["risk_rating"]) == (
        "E-2",
        "王小明",
        "medium",
    )
    assert unmatched["due_date"] == date(2026, 5, 2)


def test_change_log_and_reconciliations() -> None:
    extra = Reconciliation("mover", "E001", "調職 transferred", at(3, 1), "G1", None, 0.0, "HR-9")
    tables = review_tables(signed_review(), site_name=SITE, company=COMPANY, tz=TZ, change_log=CHANGES,
                           reconciliations=[extra])  # fmt: skip
    log = tables[4].rows
    assert [(r["row_no"], r["action"], r["matched"], r["credential_id"]) for r in log] == [
        (1, "grant", "Y", "****4444"),
        (2, "modify", "N", "****1111"),
    ]
    f = tables[5].rows
    assert [(r["kind"], r["holder_id"], r["lag_hours"]) for r in f] == [
        ("離職 leaver", "E002", 1095.0),
        ("廠商 vendor", "V001", None),
        ("mover", "E001", 0.0),
    ]
    assert f[0]["note"] == "快照時仍有效 still in force at the snapshot"
    assert (f[1]["reference"], f[1]["holder_name"]) == ("WO-77", "張大同")


def test_an_open_review() -> None:
    t = tables_of(open_review())
    assert t["A_cover"].rows[0]["status"] == "未簽核 open"
    d = t["D_exceptions"].rows
    assert {r["action"] for r in d[:3]} == {"待覆核 awaiting a decision"}
    assert {r["owner"] for r in d} == {"王小明"}  # no decision yet: the preparer
    metrics = {r["metric"]: r["value"] for r in t["B_summary"].rows}
    assert (metrics["reviewed_count"], metrics["review_coverage_pct"]) == (0, 0.0)


def test_files(export: tuple[Path, list[Path]]) -> None:
    folder, files = export
    assert [p.relative_to(folder).as_posix() for p in files] == [
        "access-review-ACR-2026Q1-tpe-hq.xlsx",
        *(f"csv/{name}.csv" for name in SHEETS),
        "access-review-ACR-2026Q1-tpe-hq.pdf",
        MANIFEST_NAME,
    ]


def test_workbook(export: tuple[Path, list[Path]]) -> None:
    folder, _ = export
    wb = load_workbook(folder / "access-review-ACR-2026Q1-tpe-hq.xlsx")
    assert [title[:2] for title in wb.sheetnames] == ["A ", "B ", "C ", "D ", "E ", "F "]
    assert wb.sheetnames[2] == "C 權限明細 Access-rights detail"
    ws = wb.worksheets[2]
    zh = [c.value for c in ws[1]]
    en = [c.value for c in ws[2]]
    for header, english in [("序號", "Row"), ("持有人編號", "Holder ID"), ("姓名", "Name"),
                            ("卡號/憑證", "Credential (masked)"), ("異常旗標", "Flags"),
                            ("覆核結論", "Reviewer decision")]:  # fmt: skip
        assert en[zh.index(header)] == english
    assert ws.freeze_panes == "A3"
    names = [row[zh.index("姓名")] for row in ws.iter_rows(min_row=3, values_only=True)]
    assert names == ["王小明", "陳美玲", "林志豪", "張大同", "林志豪"]
    cells = [str(v) for sheet in wb.worksheets for row in sheet.iter_rows(values_only=True) for v in row]
    assert not [c for c in cells if "CARD-" in c], "a credential id is not masked"
    assert "LEAVER_ACTIVE" in cells
    assert "撤銷 revoke" in cells
    cover = wb.worksheets[0]
    assert [c.value for c in cover[1]][:2] == ["報告編號", "公司/分公司"]
    assert cover["A3"].value == "ACR-2026Q1-tpe-hq"


def test_csv_files(export: tuple[Path, list[Path]]) -> None:
    folder, _ = export
    tables = tables_of(signed_review())
    for name, table in tables.items():
        path = folder / "csv" / f"{name}.csv"
        raw = path.read_bytes()
        assert raw.startswith(BOM), name
        assert b"CARD-" not in raw, name
        expected = [{c.key: cell_text(row.get(c.key), TZ) for c in table.columns} for row in table.rows]
        assert read_csv(path) == expected, name
    first = (folder / "csv" / "C_detail.csv").read_bytes()[len(BOM) :].decode().splitlines()[0]
    assert first.startswith("序號 / row_no,持有人編號 / holder_id,姓名 / holder_name,")
    detail = read_csv(folder / "csv" / "C_detail.csv")
    assert detail[3]["flags"] == "UNESCORTED_VENDOR"
    assert detail[1]["decision"] == "撤銷 revoke"


def test_pdf(export: tuple[Path, list[Path]]) -> None:
    folder, _ = export
    pdf = folder / "access-review-ACR-2026Q1-tpe-hq.pdf"
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True)
    text = squeezed(out.stdout.decode())
    for wanted in ["機房門禁權限季度覆核報告", "封面與簽核", "摘要", "例外與改善", "異常權限明細",
                   "持有人編號", "HolderID", "覆核結論", "ACR-2026Q1-tpe-hq", COMPANY, "黃稽核",
                   "EX-0002-LEAVER_ACTIVE", "****2222", "第1頁"]:  # fmt: skip
        assert wanted in text, wanted
    for name in FLAGGED:
        assert name in text, name
    assert "CARD-" not in text


def test_manifest(export: tuple[Path, list[Path]], tmp_path: Path) -> None:
    folder, _ = export
    assert verify_manifest(folder) == []
    copy = tmp_path / "copy"
    write_review_export(signed_review(), copy, site_name=SITE, company=COMPANY, tz=TZ, change_log=CHANGES)
    target = copy / "csv" / "D_exceptions.csv"
    data = bytearray(target.read_bytes())
    data[-3] ^= 1
    target.write_bytes(bytes(data))
    problems = verify_manifest(copy)
    assert len(problems) == 1, problems
    assert problems[0].startswith("csv/D_exceptions.csv: changed"), problems


def test_same_review_same_bytes(export: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, files = export
    again = write_review_export(signed_review(), tmp_path / "again", site_name=SITE, company=COMPANY, tz=TZ,
                                change_log=CHANGES)  # fmt: skip
    for a, b in zip(files, again, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
