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
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
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
_NOT_TEXT = frozenset(ERROR_CODES)  # texts openpyxl would store as an error value
_STATUS_FILLS = {k: PatternFill("solid", fgColor=v.lstrip("#").upper()) for k, v in STATUS_FILL.items()}


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
    # Write-only: rows stream into the sheet's XML as they are appended, with no Cell object kept per
    # value (about half the time of the normal mode). Widths, panes and filters go in before the rows.
    wb = Workbook(write_only=True)
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


def _cover_sheet(ws: WriteOnlyWorksheet, cover: list[tuple[str, str]]) -> None:
    for letter, texts in (("A", [k for k, _ in cover]), ("B", [v for _, v in cover])):
        widest = max((display_width(line) for t in texts for line in t.splitlines()), default=8)
        ws.column_dimensions[letter].width = min(80, widest + 2)
    for key, value in cover:
        ws.append([_styled(ws, _text(key), font=_HEADER_FONT), _styled(ws, _text(value), alignment=_WRAP)])


def _table_sheet(ws: WriteOnlyWorksheet, table: Table, tz: tzinfo) -> None:
    # The widths come from every cell's text, and a write-only sheet takes them before its first row:
    # the rows are made first, then the sheet's settings, then the rows go in.
    texts: list[list[str]] = [[] for _ in table.columns]
    rows: list[list[object]] = []
    plain: dict[str, str] = {}
    for row in table.rows:
        out: list[object] = []
        for c, value in enumerate(table.cells(row)):
            text = cell_text(value, tz)  # also validates the value, whatever the cell ends up holding
            texts[c].append(text)
            out.append(_cell(ws, value, text, tz, plain))
        rows.append(out)

    for c, column in enumerate(table.columns, start=1):
        ws.column_dimensions[get_column_letter(c)].width = column_width(column, texts[c - 1])
    last_col = get_column_letter(len(table.columns))
    last_row = len(rows) + 2
    ws.freeze_panes = "A3"
    ws.auto_filter.ref = f"A2:{last_col}{last_row}"
    ws.print_title_rows = "1:2"

    for header in ([c.zh for c in table.columns], [c.en for c in table.columns]):
        ws.append([_styled(ws, h, font=_HEADER_FONT, fill=_HEADER_FILL, alignment=_WRAP) for h in header])
    for out in rows:
        ws.append(out)


def _cell(ws: WriteOnlyWorksheet, value: object, text: str, tz: tzinfo, plain: dict[str, str]) -> object:
    """What to append for a value: numbers and times typed, the rest text; styled where it needs to be.

    `plain` maps a text to the str to append when it needs no style: a sheet repeats many texts (types,
    units, decisions), and each is checked once.
    """
    if value is None:
        return None
    if isinstance(value, datetime):  # before date: datetime is a date
        local = local_time(value, tz).replace(tzinfo=None)  # Excel has no zones: local wall time
        return _styled(ws, local, number_format="yyyy-mm-dd hh:mm:ss")
    if isinstance(value, date):
        return _styled(ws, value, number_format="yyyy-mm-dd")
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value  # NaN and infinities have no Excel number: they go on as text
    if not text:
        return None  # "" reads back as an empty cell either way: not written (a sixth of sheet C in a review)
    known = plain.get(text)
    if known is not None:
        return known
    native = _text(text)
    if native in STATUS_FILL:
        return _styled(ws, native, fill=_STATUS_FILLS[native])
    if "\n" in native:
        return _styled(ws, native, alignment=_WRAP)
    if native.startswith("=") or native in _NOT_TEXT:
        return _styled(ws, native)  # as text: see _styled
    plain[text] = native
    return native


def _styled(
    ws: WriteOnlyWorksheet,
    value: object,
    *,
    font: Font | None = None,
    fill: PatternFill | None = None,
    alignment: Alignment | None = None,
    number_format: str | None = None,
) -> WriteOnlyCell:
    """A cell with a style; a text cell stays text."""
    cell = WriteOnlyCell(ws, value)
    if isinstance(value, str):
        # openpyxl takes "=..." for a formula and "#N/A" for an error: a note must not become either.
        cell.data_type = "s"
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if alignment is not None:
        cell.alignment = alignment
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _text(text: str) -> str:
    # Control characters are illegal in the XML of a sheet; a visible mark keeps the cell honest.
    text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    if len(text) > CELL_TEXT_MAX:
        text = text[: CELL_TEXT_MAX - 1] + "…"
    return text
