"""Tables every export format renders: bilingual columns, rows of plain values, one text rule."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

# What a cell may hold. Anything else is a mistake of the caller and raises, rather than turning up in an
# evidence file as "<object at 0x...>".
Value = str | int | float | bool | None | datetime | date | list[object] | dict[str, object]

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
LIST_SEPARATOR = "; "

# Check results as the tables carry them; every format colours these cells the same way.
STATUSES = ("pass", "warn", "fail", "unknown")
STATUS_FILL = {"pass": "#a5d6a7", "warn": "#ffd54f", "fail": "#ef9a9a", "unknown": "#d0d0d0"}
STATUS_ZH = {"pass": "符合", "warn": "注意", "fail": "不符合", "unknown": "未知"}

# Table names become file and sheet-code names: ASCII only, so every unzip tool and file system agrees.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Keys appear in the CSV header after " / " and are what read_csv hands back.
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Column:
    """One column: its row key, Traditional Chinese and English headers, optional width in characters."""

    key: str
    zh: str
    en: str
    width: int | None = None

    def __post_init__(self) -> None:
        if not _KEY_RE.fullmatch(self.key):
            raise ValueError(f"column key {self.key!r}: use ASCII letters, digits, '_', '.', '-'")
        if self.width is not None and self.width <= 0:
            raise ValueError(f"column {self.key!r}: width must be positive, not {self.width}")


@dataclass(frozen=True)
class Table:
    """A named table: bilingual title, columns, rows keyed by column key (missing keys are empty cells)."""

    name: str
    title_zh: str
    title_en: str
    columns: Sequence[Column]
    rows: list[dict[str, object]]

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(f"table name {self.name!r}: use 1-100 ASCII letters, digits, '_', '.', '-'")
        if not self.columns:
            raise ValueError(f"table {self.name!r} has no columns")
        keys = [c.key for c in self.columns]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"table {self.name!r}: duplicate column keys {dupes}")

    def cells(self, row: dict[str, object]) -> list[object]:
        """The row's values in column order (None where the row lacks a key)."""
        return [row.get(c.key) for c in self.columns]


def local_time(value: datetime, tz: tzinfo) -> datetime:
    """An aware datetime in the site's zone; a naive one is refused, as its zone would be a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: evidence times must carry a zone")
    return value.astimezone(tz)


def cell_text(value: object, tz: tzinfo) -> str:
    """The text of a value, the same in every format: local times, '; '-joined lists, compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, str):
        return str.__str__(value)  # a (str, Enum) member gives its value, not 'Cls.member'
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):  # before date: datetime is a date
        return local_time(value, tz).strftime(DATETIME_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(cell_text(v, tz) for v in value)
    if isinstance(value, dict):
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), default=lambda v: _json_default(v, tz)
        )
    raise TypeError(f"cannot export a {type(value).__name__}: {value!r}")


def _json_default(value: object, tz: tzinfo) -> str:
    if isinstance(value, date):  # datetimes too: same local rendering as a cell
        return cell_text(value, tz)
    raise TypeError(f"cannot export a {type(value).__name__} inside a dict: {value!r}")


def display_width(text: str) -> int:
    """Width in columns of a fixed-width grid: East Asian wide and full-width characters count double."""
    if text.isascii():  # most cells (ids, times, codes): no character to look up
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def column_width(column: Column, texts: Sequence[str], cap: int = 60) -> int:
    """A column's width in characters: its own if given, else the widest header or cell line, capped."""
    if column.width is not None:
        return column.width
    widest = max(display_width(column.zh), display_width(column.en))
    for text in texts:
        # A line is as wide as its length at least and twice that at most: a text whose double length
        # is no wider than the widest so far cannot change it, and most texts need no measuring.
        if 2 * len(text) <= widest:
            continue
        widest = max(widest, *(display_width(line) for line in text.splitlines()))
        if widest + 2 >= cap:  # nothing can be wider than the cap
            break
    return min(cap, widest + 2)
