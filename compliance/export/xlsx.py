"""XLSX workbooks: a sheet per table, Chinese and English header rows, filters, frozen panes."""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from compliance.export.tables import STATUS_FILL, Table, cell_text, column_width, display_width, local_time

COVER_TITLE = "封面"
SHEET_TITLE_MAX = 31  # Excel's limit
CELL_TEXT_MAX = 32767  # Excel's limit; longer text makes Excel "repair" the file
# The zip epoch: member times carry no information, and a fixed one makes the bytes repeatable.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# When the caller gives no timestamp, the document properties get this one, like reportlab's invariant mode.
FIXED_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
_WRAP = Alignment(wrap_text=True, vertical="top")


class _FixedTimeZip(zipfile.ZipFile):
    """A ZipFile whose members all carry ZIP_TIME, so openpyxl's output does not depend on the clock."""

    def writestr(self, zinfo_or_arcname: Any, data: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(zinfo_or_arcname, str):
            zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=ZIP_TIME)
            zinfo_or_arcname.compress_type = self.compression
            zinfo_or_arcname.external_attr = 0o644 << 16
        super().writestr(zinfo_or_arcname, data, *args, **kwargs)

    def write(self, filename: Any, arcname: Any = None, *args: Any, **kwargs: Any) -> None:
        # openpyxl streams each worksheet through a temporary file; its mtime must not reach the zip.
        with open(filename, "rb") as fh:
            self.writestr(str(arcname if arcname is not None else filename), fh.read())


def sheet_titles(tables: Sequence[Table], reserved: Sequence[str] = ()) -> list[str]:
    """Sheet titles from title_zh: Excel's forbidden characters removed, <= 31 characters, unique."""
    used = {t.casefold() for t in reserved}  # Excel compares sheet names case-insensitively
    titles = []
    for table in tables:
        base = _SHEET_FORBIDDEN.sub("", table.title_zh).strip().strip("'") or table.name
        title = base[:SHEET_TITLE_MAX]
        n = 2
        while title.casefold() in used:
            suffix = f" ({n})"
            title = base[: SHEET_TITLE_MAX - len(suffix)] + suffix
            n += 1
        used.add(title.casefold())
        titles.append(title)
    return titles


def write_workbook(
    path: str | Path,
    tables: Sequence[Table],
    tz: tzinfo,
    cover: list[tuple[str, str]] | None = None,
    *,
    timestamp: datetime | None = None,
) -> Path:
    """Write one sheet per table (after an optional key/value cover sheet); same input, same bytes."""
    path = Path(path)
    wb = Workbook()
    default = wb.active
    assert default is not None
    wb.remove(default)
    if cover is not None:
        _cover_sheet(wb.create_sheet(COVER_TITLE), cover)
    titles = sheet_titles(tables, reserved=[COVER_TITLE] if cover is not None else [])
    for table, title in zip(tables, titles, strict=True):
        _table_sheet(wb.create_sheet(title), table, tz)

    when = local_time(timestamp or FIXED_TIMESTAMP, UTC).replace(tzinfo=None)  # openpyxl wants naive UTC
    wb.properties.created = when
    wb.properties.modified = when
    wb.properties.creator = "roomguard"
    wb.properties.lastModifiedBy = "roomguard"
    # openpyxl's save_workbook stamps `modified` with the clock; its writer on our zip does not.
    path.parent.mkdir(parents=True, exist_ok=True)
    with _FixedTimeZip(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()
    return path


def _cover_sheet(ws: Worksheet, cover: list[tuple[str, str]]) -> None:
    for key, value in cover:
        ws.append([_text(key), _text(value)])
    for row in ws.iter_rows(min_col=1, max_col=1):
        row[0].font = _HEADER_FONT
    for letter, texts in (("A", [k for k, _ in cover]), ("B", [v for _, v in cover])):
        widest = max((display_width(line) for t in texts for line in t.splitlines()), default=8)
        ws.column_dimensions[letter].width = min(80, widest + 2)
    for row in ws.iter_rows(min_col=2, max_col=2):
        row[0].alignment = _WRAP


def _table_sheet(ws: Worksheet, table: Table, tz: tzinfo) -> None:
    ws.append([c.zh for c in table.columns])
    ws.append([c.en for c in table.columns])
    for row in ws.iter_rows(min_row=1, max_row=2):
        for cell in row:
            cell.font = _HEADER_FONT
            cell.fill = _HEADER_FILL
            cell.alignment = _WRAP

    texts: list[list[str]] = [[] for _ in table.columns]
    for r, row_values in enumerate((table.cells(row) for row in table.rows), start=3):
        for c, value in enumerate(row_values, start=1):
            text = cell_text(value, tz)  # also validates the value, whatever the cell ends up holding
            texts[c - 1].append(text)
            cell = ws.cell(row=r, column=c)
            native = _native(value, tz)
            if native is None:
                continue
            cell.value = native
            if isinstance(native, str):
                # A text cell stays text: "=..." from a note must not become a formula.
                cell.data_type = "s"
                if native in STATUS_FILL:
                    cell.fill = PatternFill("solid", fgColor=STATUS_FILL[native].lstrip("#").upper())
                if "\n" in native:
                    cell.alignment = _WRAP
            elif isinstance(native, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(native, date):
                cell.number_format = "yyyy-mm-dd"

    for c, column in enumerate(table.columns, start=1):
        ws.column_dimensions[get_column_letter(c)].width = column_width(column, texts[c - 1])
    last_col = get_column_letter(len(table.columns))
    last_row = max(2, ws.max_row)
    ws.freeze_panes = "A3"
    ws.auto_filter.ref = f"A2:{last_col}{last_row}"
    ws.print_title_rows = "1:2"


def _native(value: object, tz: tzinfo) -> object:
    """The cell value Excel sorts and filters best: numbers and times stay typed, the rest is text."""
    if value is None:
        return None
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value  # NaN and infinities have no Excel number: they fall through to text
    if isinstance(value, datetime):
        return local_time(value, tz).replace(tzinfo=None)  # Excel has no zones: local wall time
    if isinstance(value, date):
        return value
    return _text(cell_text(value, tz))


def _text(text: str) -> str:
    # Control characters are illegal in the XML of a sheet; a visible mark keeps the cell honest.
    text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    if len(text) > CELL_TEXT_MAX:
        text = text[: CELL_TEXT_MAX - 1] + "…"
    return text
