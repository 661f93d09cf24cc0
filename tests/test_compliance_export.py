# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The export layer: XLSX, CSV, PDF with charts, the SHA-256 manifest and the deterministic zip."""

from __future__ import annotations

import io
import subprocess
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from PIL import Image

from compliance.export import (
    ASHRAE_RH_BANDS,
    ASHRAE_TEMP_BANDS,
    MANIFEST_NAME,
    Column,
    PdfReport,
    Table,
    band_chart,
    read_csv,
    timeline_chart,
    verify_manifest,
    write_csv,
    write_manifest,
    write_workbook,
    write_zip,
)
from compliance.export.charts import daily_stats
from compliance.export.pdf import FontMissingError, tw_face
from compliance.export.tables import cell_text, display_width
from compliance.export.xlsx import sheet_titles

TZ = ZoneInfo("Asia/Taipei")
T0 = datetime(2026, 11, 1, 0, 30, tzinfo=UTC)  # 08:30 in Taipei


def checks_table(rows: int = 4) -> Table:
    statuses = ["pass", "warn", "fail", "unknown"]
    return Table(
        name="checks",
        title_zh="檢查結果",
        title_en="Check results",
        columns=[
            Column("item", "項目", "Item"),
            Column("status", "結果", "Status"),
            Column("started_at", "開始時間", "Started at"),
            Column("value", "數值", "Value"),
        ],
        rows=[
            {
                "item": f"機房溫度 {i}",
                "status": statuses[i % 4],
                "started_at": T0 + timedelta(hours=i),
                "value": 21.5 + i,
            }
            for i in range(rows)
        ],
    )


def doors_table() -> Table:
    return Table(
        name="doors",
        title_zh="門禁紀錄: Machine-room doors [main/back], whole month",  # too long; no :[/]
        title_en="Door events",
        columns=[
            Column("door", "門", "Door"),
            Column("opened", "開啟次數", "Opened"),
            Column("tags", "標記", "Tags"),
        ],
        rows=[{"door": "主門", "opened": 12, "tags": ["a", "b"]}, {"door": "後門", "opened": 0, "tags": []}],
    )


def pdftotext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


# ---- tables -------------------------------------------------------------------------------------------


def test_cell_text_renders_each_kind_of_value_the_same_way_everywhere() -> None:
    assert cell_text(None, TZ) == ""
    assert cell_text(True, TZ) == "true"
    assert cell_text(3, TZ) == "3"
    assert cell_text(T0, TZ) == "2026-11-01 08:30:00"  # local wall time in the site's zone
    assert cell_text(date(2026, 11, 1), TZ) == "2026-11-01"
    assert cell_text(["a", 1, None], TZ) == "a; 1; "
    assert cell_text({"門": "主門", "n": 2}, TZ) == '{"門":"主門","n":2}'
    with pytest.raises(ValueError, match="naive"):
        cell_text(datetime(2026, 11, 1), TZ)
    with pytest.raises(TypeError, match="set"):
        cell_text({1, 2}, TZ)


def test_display_width_counts_cjk_double() -> None:
    assert display_width("abc") == 3
    assert display_width("機房") == 4
    assert display_width("機房 A") == 6


def test_table_names_are_ascii_and_keys_unique() -> None:
    with pytest.raises(ValueError, match="table name"):
        Table("檢查", "檢查", "Checks", [Column("a", "甲", "A")], [])
    with pytest.raises(ValueError, match="duplicate"):
        Table("t", "表", "T", [Column("a", "甲", "A"), Column("a", "乙", "B")], [])


# ---- XLSX ---------------------------------------------------------------------------------------------


def test_xlsx_has_a_sheet_per_table_with_two_header_rows_frozen_and_filtered(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "pack.xlsx", [checks_table(), doors_table()], TZ, cover=[("場域 Site", "台北機房")]
    )
    wb = load_workbook(path)
    assert wb.sheetnames == ["封面", "檢查結果", "門禁紀錄 Machine-room doors mainbac"]
    assert all(len(name) <= 31 for name in wb.sheetnames)
    assert wb["封面"]["A1"].value == "場域 Site"

    ws = wb["檢查結果"]
    assert [c.value for c in ws[1]] == ["項目", "結果", "開始時間", "數值"]
    assert [c.value for c in ws[2]] == ["Item", "Status", "Started at", "Value"]
    assert ws.freeze_panes == "A3"
    assert ws.auto_filter.ref == "A2:D6"
    assert ws["C3"].value == datetime(2026, 11, 1, 8, 30)  # a real date-time, in local wall time
    assert ws["C3"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["D3"].value == 21.5
    assert ws["B5"].fill.fgColor.rgb.endswith("EF9A9A")  # 'fail' in red
    # CJK headers count double: the Chinese column is wider than its character count.
    assert ws.column_dimensions["A"].width >= display_width("機房溫度 0")

    doors = wb["門禁紀錄 Machine-room doors mainbac"]
    assert doors.freeze_panes == "A3"
    assert doors.auto_filter.ref == "A2:C4"
    assert doors["C3"].value == "a; b"


def test_xlsx_same_input_same_bytes(tmp_path: Path) -> None:
    a = write_workbook(tmp_path / "a.xlsx", [checks_table()], TZ, timestamp=T0)
    b = write_workbook(tmp_path / "b.xlsx", [checks_table()], TZ, timestamp=T0)
    assert a.read_bytes() == b.read_bytes()
    assert load_workbook(a).properties.modified == datetime(2026, 11, 1, 0, 30)


def test_xlsx_text_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    table = Table("notes", "備註", "Notes", [Column("note", "備註", "Note")], [{"note": "=HYPERLINK(1)"}])
    ws = load_workbook(write_workbook(tmp_path / "n.xlsx", [table], TZ))["備註"]
    assert ws["A3"].data_type == "s"
    assert ws["A3"].value == "=HYPERLINK(1)"


def test_sheet_titles_are_unique_case_insensitively_and_short() -> None:
    t = [Table(f"t{i}", "A" * 40 if i < 2 else "a" * 40, "T", [Column("k", "甲", "K")], []) for i in range(3)]
    titles = sheet_titles(t, reserved=["封面"])
    assert len({x.casefold() for x in titles}) == 3
    assert all(len(x) <= 31 for x in titles)


# ---- CSV ----------------------------------------------------------------------------------------------


def test_csv_has_a_bom_crlf_bilingual_header_and_round_trips(tmp_path: Path) -> None:
    tricky = [
        "機房主門，已上鎖",
        'a, "quoted", b',
        "line one\nline two",
        "=SUM(A1:A2)",
        "-leading dash",
        "'apostrophe",
        "",
    ]
    table = Table(
        "notes",
        "備註",
        "Notes",
        [
            Column("started_at", "開始時間", "Started at"),
            Column("note", "備註", "Note"),
            Column("n", "數", "N"),
        ],
        [{"started_at": T0, "note": text, "n": -3} for text in tricky],
    )
    path = write_csv(tmp_path / "notes.csv", table, TZ)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.splitlines(keepends=True)[0].endswith(b"\r\n")
    assert raw[3:].decode().startswith("開始時間 / started_at,備註 / note,數 / n\r\n")
    assert b"'=SUM" in raw  # CSV injection guard: Excel shows the text instead of running it

    rows = read_csv(path)
    assert [r["note"] for r in rows] == tricky
    assert {r["started_at"] for r in rows} == {"2026-11-01 08:30:00"}
    assert {r["n"] for r in rows} == {"-3"}  # a number is not guarded


# ---- PDF and charts -----------------------------------------------------------------------------------


def sample_report() -> PdfReport:
    t_start = datetime(2026, 11, 1, tzinfo=TZ)
    samples = [(t_start + timedelta(hours=h), 22.0 + (h % 24) / 4) for h in range(24 * 30)]
    rh = [(t, 45.0 + (i % 24) / 2) for i, (t, _) in enumerate(samples)]
    events = [
        (t_start + timedelta(days=2, hours=10), "UPS 放電測試", "pass"),
        (t_start + timedelta(days=9, hours=10), "發電機試車", "warn"),
        (t_start + timedelta(days=16, hours=10), "CRAC 切換", "fail"),
    ]
    report = PdfReport(
        "機房環境月報",
        "Machine-room environment monthly report",
        site="台北機房",
        period="2026-11-01 – 2026-11-30",
        generated_at=datetime(2026, 12, 1, 1, 0, tzinfo=UTC),
        tz=TZ,
    )
    report.heading("溫濕度紀錄", "Temperature and humidity")
    report.paragraph("每日最低、平均、最高溫度與 ASHRAE 建議範圍比較。Daily min/avg/max against ASHRAE.")
    period = (date(2026, 11, 1), date(2026, 11, 30))
    report.drawing(band_chart(samples, ASHRAE_TEMP_BANDS, "溫度 Temperature", "°C", tz=TZ, period=period))
    report.drawing(band_chart(rh, ASHRAE_RH_BANDS, "相對濕度 RH", "%", tz=TZ, width=700))  # shrunk to fit
    report.heading("測試時間軸", "Test timeline", level=2)
    report.drawing(timeline_chart(events, t_start, t_start + timedelta(days=30), "測試 Tests"))
    report.heading("檢查結果", "Check results")
    report.table(checks_table(60))  # long enough to span pages: the header repeats
    report.sign_off(prepared_by="王小明")
    return report


def test_pdf_text_has_the_chinese_words_statuses_and_page_numbers(tmp_path: Path) -> None:
    path = sample_report().build(tmp_path / "report.pdf")
    text = pdftotext(path)
    for words in ("機房環境月報", "溫濕度紀錄", "檢查結果", "製表 Prepared by", "覆核", "核准"):
        assert words in text
    assert "page 1 of" in text
    assert "第 1 頁" in text
    assert "fail 不符合" in text
    assert "2026-11-01 08:30:00" in text  # table times in the site's zone
    # Chart text (titles, legends) is real text in the embedded font, not an image.
    assert "溫度 Temperature" in text
    assert "ASHRAE 建議 recommended 18–27 °C" in text
    assert "UPS 放電測試" in text
    assert text.count("開始時間") >= 2  # the header row repeated on the next page


def test_pdf_same_input_same_bytes(tmp_path: Path) -> None:
    a = sample_report().to_bytes()
    b = sample_report().to_bytes()
    assert a == b
    assert a.startswith(b"%PDF")


def test_pdf_charts_render_into_the_pdf(tmp_path: Path) -> None:
    # Rendered by poppler, the chart page shows the ASHRAE recommended band's colour (#cdebd3) over an
    # area, and a report without charts shows none of it.
    band = (0xCD, 0xEB, 0xD3)
    with_charts = _page_pixels(sample_report().to_bytes(), page=2)
    plain = PdfReport("無圖", "No charts", site="s", period="p", generated_at=T0, tz=TZ)
    plain.paragraph("文字")
    without = _page_pixels(plain.to_bytes(), page=2)
    assert with_charts.get(band, 0) > 5000  # two charts' bands, at 50 dpi
    assert band not in without


def _page_pixels(pdf: bytes, page: int) -> dict[tuple[int, ...], int]:
    """How many pixels of each colour one page has, rendered by poppler without anti-aliasing."""
    ppm = subprocess.run(
        ["pdftoppm", "-r", "50", "-f", str(page), "-l", str(page), "-aa", "no", "-aaVector", "no", "-"],
        input=pdf,
        capture_output=True,
        check=True,
    ).stdout
    colours = Image.open(io.BytesIO(ppm)).convert("RGB").getcolors(1 << 24) or []
    return {colour: n for n, colour in colours if isinstance(colour, tuple)}


def test_a_missing_font_names_its_path_and_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(
        FontMissingError, match=r"uming\.ttc not found: install the Debian package fonts-arphic-uming"
    ):
        tw_face(tmp_path / "uming.ttc")


def test_daily_stats_split_days_in_the_site_zone() -> None:
    # 23:30 UTC on 31 Oct is 07:30 on 1 Nov in Taipei.
    samples = [
        (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 20.0),
        (datetime(2026, 11, 1, 1, 0, tzinfo=UTC), 24.0),
    ]
    (day,) = daily_stats(samples, TZ)
    assert day == (date(2026, 11, 1), 20.0, 22.0, 24.0)
    with pytest.raises(ValueError, match="tz"):
        band_chart(samples, ASHRAE_TEMP_BANDS, "t", "°C")


# ---- manifest and zip ---------------------------------------------------------------------------------


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    folder = tmp_path / "pack"
    (folder / "data").mkdir(parents=True)
    write_csv(folder / "data" / "checks.csv", checks_table(), TZ)
    write_workbook(folder / "pack.xlsx", [checks_table()], TZ)
    (folder / "說明.txt").write_text("證據包說明\n", encoding="utf-8")
    write_manifest(folder)
    return folder


def test_manifest_is_sha256sum_format_and_verifies(pack: Path) -> None:
    text = (pack / MANIFEST_NAME).read_text(encoding="utf-8")
    names = [line.split("  ", 1)[1] for line in text.splitlines()]
    assert names == sorted(names) == ["data/checks.csv", "pack.xlsx", "說明.txt"]
    assert verify_manifest(pack) == []
    # The coreutils tool agrees with us.
    subprocess.run(["sha256sum", "--check", "--strict", "--quiet", MANIFEST_NAME], cwd=pack, check=True)


def test_manifest_names_a_changed_a_missing_and_an_extra_file(pack: Path) -> None:
    target = pack / "data" / "checks.csv"
    raw = bytearray(target.read_bytes())
    raw[10] ^= 0x01
    target.write_bytes(bytes(raw))
    problems = verify_manifest(pack)
    assert len(problems) == 1
    assert problems[0].startswith("data/checks.csv: changed")

    (pack / "說明.txt").unlink()
    (pack / "extra.txt").write_text("not listed")
    problems = verify_manifest(pack)
    assert any(p.startswith("說明.txt: missing") for p in problems)
    assert any(p.startswith("extra.txt: extra") for p in problems)
    assert len(problems) == 3


def test_manifest_refuses_paths_outside_the_folder(pack: Path) -> None:
    with (pack / MANIFEST_NAME).open("a", encoding="utf-8") as fh:
        fh.write(f"{'0' * 64}  ../../etc/passwd\n")
    assert verify_manifest(pack) == ["../../etc/passwd: unsafe path in MANIFEST.sha256 line 4"]


def test_zip_is_deterministic_and_verifies(pack: Path, tmp_path: Path) -> None:
    a = write_zip(tmp_path / "a.zip", pack)
    b = write_zip(tmp_path / "b.zip", pack)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    assert verify_manifest(a) == []


def test_zip_with_an_altered_member_names_it(pack: Path, tmp_path: Path) -> None:
    good = write_zip(tmp_path / "good.zip", pack)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "pack.xlsx":
                data = data[:-1] + bytes([data[-1] ^ 0x01])
            dst.writestr(info, data)
    problems = verify_manifest(bad)
    assert len(problems) == 1
    assert problems[0].startswith("pack.xlsx: changed")


def test_zip_refuses_a_folder_changed_after_its_manifest(pack: Path, tmp_path: Path) -> None:
    (pack / "說明.txt").write_text("changed afterwards", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"說明\.txt: changed"):
        write_zip(tmp_path / "pack.zip", pack)
