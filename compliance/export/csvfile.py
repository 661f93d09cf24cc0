"""CSV files Excel in Taiwan opens as UTF-8 (with a BOM), and that read back to the same strings."""

from __future__ import annotations

import csv
from datetime import tzinfo
from pathlib import Path

from compliance.export.tables import Table, cell_text

ENCODING = "utf-8-sig"  # the BOM is how Excel knows the file is UTF-8 and not Big5 (cp950)
HEADER_SEPARATOR = " / "
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection, OWASP).
# Such text gets a leading apostrophe; text starting with an apostrophe gets one too, so read_csv
# strips exactly one from any field that starts with it and every string comes back as written.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def header(zh: str, key: str) -> str:
    """A column's header cell: Chinese header, then the key read_csv gives back ('開始時間 / started_at')."""
    return f"{zh}{HEADER_SEPARATOR}{key}"


def write_csv(path: str | Path, table: Table, tz: tzinfo) -> Path:
    """Write the table as CSV: UTF-8 with BOM, 'zh / key' header, CRLF line ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=ENCODING, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow([header(c.zh, c.key) for c in table.columns])
        for row in table.rows:
            writer.writerow([_escape(value, cell_text(value, tz)) for value in table.cells(row)])
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a file write_csv wrote, keyed by column key, every value the text it was written as."""
    with Path(path).open(encoding=ENCODING, newline="") as fh:
        reader = csv.reader(fh)
        try:
            head = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file, no header row") from None
        keys = [h.rsplit(HEADER_SEPARATOR, 1)[-1] for h in head]
        rows = []
        for line_no, fields in enumerate(reader, start=2):
            if len(fields) != len(keys):
                raise ValueError(f"{path}: record {line_no} has {len(fields)} fields, header has {len(keys)}")
            rows.append({k: _unescape(f) for k, f in zip(keys, fields, strict=True)})
        return rows


def _escape(value: object, text: str) -> str:
    # Only text is guarded: a negative number is data, not an attack, and stays a number for Excel.
    if isinstance(value, str | list | dict) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _unescape(field: str) -> str:
    return field[1:] if field.startswith("'") else field
