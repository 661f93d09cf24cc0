# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The export writers' fast paths: plain-string PDF cells, wrap once per width, write-only XLSX."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import Paragraph

import compliance.export.pdf as pdf_module
from compliance.export import Column, PdfReport, Table, write_workbook
from compliance.export.pdf import _CellParagraph
from compliance.export.tables import cell_text, column_width, display_width

TZ = ZoneInfo("Asia/Taipei")
T0 = datetime(2026, 11, 1, 0, 30, tzinfo=UTC)  # 08:30 in Taipei
LONG = " ".join(f"word{i:03d}" for i in range(60))  # many times its column's width
COLUMNS = [
    Column("id", "編號", "ID"),
    Column("status", "結果", "Status"),
    Column("note", "備註", "Note"),
    Column("at", "時間", "At"),
    Column("remark", "說明", "Remark", width=12),
]


def mixed_table() -> Table:
    """Cells that fit their line, long ones, one with a line break, runs of spaces, an empty row."""
    rows: list[dict[str, object]] = [
        {"id": "SHORT-01", "status": "fail", "note": "短 short note", "at": T0, "remark": 3},
        {"id": "LONG-02", "status": "pass", "note": LONG, "at": T0},
        {"id": "LINES-03", "status": "warn", "note": "第一行 first\n第二行 second", "remark": "=SUM(A1)"},
        {"id": "SPACES-04", "status": "", "note": "two  spaces ", "remark": "#N/A"},
        {},
        {"id": "DICT-06", "note": {"門": "主門", "n": 2}, "remark": ["a", "b"]},
        {"id": "LONG-07", "status": "pass", "note": LONG},  # the same long text again: one Paragraph, twice
    ]
    return Table("mixed", "混合表格", "Mixed cells", COLUMNS, rows)


def report() -> PdfReport:
    out = PdfReport("速度測試", "Speed paths", site="台北機房", period="2026-11", generated_at=T0, tz=TZ)
    out.heading("表格", "Table")
    out.table(mixed_table())
    out.sign_off(prepared_by="王小明")
    return out


def pdftotext(pdf: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, check=True, capture_output=True
    ).stdout.decode()


def pages_as_pixels(pdf: bytes) -> bytes:
    """Every page rendered by poppler (100 dpi, grey, no anti-aliasing), one PGM after the other."""
    return subprocess.run(
        ["pdftoppm", "-r", "100", "-gray", "-aa", "no", "-aaVector", "no", "-"],
        input=pdf,
        check=True,
        capture_output=True,
    ).stdout


# ---- PDF ----------------------------------------------------------------------------------------------


def test_cells_that_fit_their_line_are_plain_strings_the_rest_paragraphs() -> None:
    font, size = pdf_module.cjk_font(), 8
    exact = pdfmetrics.stringWidth("機房 A-12", font, size)
    texts = ["機房 A-12", "機房 A-12", LONG, "a\nb", " lead", "trail ", "two  spaces", "tab\there", ""]
    rooms = [exact, exact - 0.01, *([200.0] * 7)]
    body = report()._body([texts], rooms)
    assert body[0][0] == "機房 A-12"  # exactly as wide as its room: fits
    assert [isinstance(c, Paragraph) for c in body[0][1:8]] == [True] * 7
    assert body[0][8] == ""
    # A row of nothing keeps Paragraphs: an empty string would make the row a line high.
    assert all(isinstance(c, Paragraph) for c in report()._body([["", ""]], [50.0, 50.0])[0])


def test_plain_string_cells_look_exactly_like_paragraph_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    def one_paragraph_each(self: PdfReport, texts: list[list[str]], room: list[float]) -> list[list[object]]:
        return [[Paragraph(pdf_module._para_text(t), self.styles["cell"]) for t in row] for row in texts]

    fast = report().to_bytes()
    monkeypatch.setattr(PdfReport, "_body", one_paragraph_each)  # every cell its own Paragraph, as before
    slow = report().to_bytes()
    assert fast != slow
    assert pages_as_pixels(fast) == pages_as_pixels(slow)  # same font, size, padding, baseline, rows


def test_cells_with_the_same_text_in_a_column_share_one_paragraph() -> None:
    body = report()._body([[LONG, LONG], [LONG, LONG]], [100.0, 150.0])
    assert body[0][0] is body[1][0]  # same text, same width: one Paragraph, its lines broken once
    assert body[0][0] is not body[0][1]  # another width: its own


def test_a_long_cell_still_wraps_and_short_cells_are_drawn() -> None:
    text = pdftotext(report().to_bytes())
    lines = text.splitlines()
    for word in LONG.split():
        assert word in text
    first = next(i for i, line in enumerate(lines) if "word000" in line)
    last = next(i for i, line in enumerate(lines) if "word059" in line)
    assert last - first >= 3  # wrapped onto several lines of its cell
    for shown in ("SHORT-01", "短 short note", "fail 不符合", "2026-11-01 08:30:00", "DICT-06"):
        assert shown in text
    assert '{"門":"主門","n":2}' in text
    first_line = next(i for i, line in enumerate(lines) if "第一行 first" in line)
    assert "第二行 second" in lines[first_line + 1]  # a line break in a cell still breaks the line
    assert "page 1 of" in text
    assert "製表 Prepared by" in text


def test_same_input_same_pdf_bytes() -> None:
    assert report().to_bytes() == report().to_bytes()


def test_a_cell_paragraph_breaks_its_lines_once_per_width(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = Paragraph.breakLinesCJK

    def counted(self: Paragraph, widths: object) -> object:
        calls.append(widths)
        return real(self, widths)

    monkeypatch.setattr(Paragraph, "breakLinesCJK", counted)
    cell = _CellParagraph(LONG, report().styles["cell"])
    narrow = cell.wrap(100, 1000)
    assert cell.wrap(100, 500) == narrow
    assert len(calls) == 1
    wide = cell.wrap(300, 1000)
    assert wide[1] < narrow[1]
    assert cell.wrap(100, 1000) == narrow
    assert len(calls) == 3


# ---- XLSX ---------------------------------------------------------------------------------------------


def test_write_only_xlsx_keeps_panes_filter_widths_and_cell_styles(tmp_path: Path) -> None:
    empty = Table("empty", "空表", "Empty", [Column("a", "甲", "A")], [])
    cover = [("場域 Site", "台北機房"), ("期間 Period", "2026-11\n第二行")]
    wb = load_workbook(write_workbook(tmp_path / "m.xlsx", [mixed_table(), empty], TZ, cover=cover))
    assert wb.sheetnames == ["封面", "混合表格", "空表"]

    ws = wb["混合表格"]
    assert [c.value for c in ws[1]] == ["編號", "結果", "備註", "時間", "說明"]
    assert [c.value for c in ws[2]] == ["ID", "Status", "Note", "At", "Remark"]
    assert all(c.font.b and c.fill.fgColor.rgb.endswith("DDE4EE") and c.alignment.wrap_text for c in ws[2])
    assert ws.freeze_panes == "A3"
    assert ws.auto_filter.ref == "A2:E9"
    assert ws.print_title_rows == "$1:$2"
    table = mixed_table()
    for letter, column in zip("ABCDE", COLUMNS, strict=True):
        texts = [cell_text(row.get(column.key), TZ) for row in table.rows]
        assert ws.column_dimensions[letter].width == column_width(column, texts)
    assert ws.column_dimensions["C"].width == 60  # the long note: capped
    assert ws.column_dimensions["E"].width == 12  # the column's own width

    assert ws["B3"].fill.fgColor.rgb.endswith("EF9A9A")  # 'fail' in red
    assert ws["D3"].value == datetime(2026, 11, 1, 8, 30)
    assert ws["D3"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["E3"].value == 3
    assert ws["C5"].alignment.wrap_text
    assert (ws["E5"].value, ws["E5"].data_type) == ("=SUM(A1)", "s")  # text, not a formula
    assert (ws["E6"].value, ws["E6"].data_type) == ("#N/A", "s")  # text, not an error
    assert ws["C6"].value == "two  spaces "  # the XLSX keeps the text as it is
    assert ws["B6"].value is None  # an empty text: an empty cell
    assert [c.value for c in ws[7]] == [None] * 5
    assert ws["E8"].value == "a; b"

    assert wb["空表"].auto_filter.ref == "A2:A2"
    assert wb["空表"].freeze_panes == "A3"
    front = wb["封面"]
    assert front["A1"].font.b
    assert front["B2"].alignment.wrap_text
    assert front.column_dimensions["A"].width == display_width("期間 Period") + 2


def test_same_input_same_xlsx_bytes(tmp_path: Path) -> None:
    tables = [mixed_table(), Table("empty", "空表", "Empty", [Column("a", "甲", "A")], [])]
    a = write_workbook(tmp_path / "a.xlsx", tables, TZ, cover=[("k", "v")], timestamp=T0)
    b = write_workbook(tmp_path / "b.xlsx", tables, TZ, cover=[("k", "v")], timestamp=T0)
    assert a.read_bytes() == b.read_bytes()


# ---- column widths ------------------------------------------------------------------------------------


def test_column_width_skips_no_line_that_could_be_the_widest() -> None:
    def reference(column: Column, texts: list[str], cap: int) -> int:
        lines = [column.zh, column.en, *(line for t in texts for line in t.splitlines())]
        return min(cap, max(display_width(line) for line in lines) + 2)

    column = Column("c", "欄", "C")
    samples = [
        [],
        [""],
        ["abc", "機房機房", "abcdefgh"],
        ["short", "x\n機房機房機房機房機房", "\n"],
        ["a" * 30, "機" * 16],
        ["機" * 40],
        ["ab\r\ncd", "全形：ＡＢＣ", "x" * 100],
    ]
    for texts in samples:
        for cap in (8, 40, 60):
            assert column_width(column, texts, cap) == reference(column, texts, cap), (texts, cap)
