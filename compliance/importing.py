"""Import records people keep (duty roster, vendor visits, disposals, ...) from CSV or JSON, with no database.

Each kind of record is a pydantic model; a file becomes a list of those models or nothing at all:

* CSV: the first row is the header. A header cell names a field by its name, its alias, its Chinese
  label (`Field(json_schema_extra={"zh": "廠商"})`) or as 'zh / en' (either side may name it); case,
  full-width letters, spaces, '-' and '_' do not matter. Cells are stripped; an empty one is absent (the
  field's default; None for a required field that allows None; else a problem). A list field is split
  on ';'. Blank rows are skipped but keep their number: the header is row 1, the first data row row 2.
* JSON: a list of objects, or {"records": [...]}; record N counts from 1. Keys are read like headers.
* Date-times without an offset are wall-clock times in the site's zone (`tz`); ISO 8601,
  'YYYY-MM-DD HH:MM[:SS]', 'YYYY/MM/DD HH:MM[:SS]' and Excel's zh-TW 'YYYY/M/D 上午|下午 H:MM[:SS]' are
  read. A wall-clock time the zone skips or repeats (a DST change) is refused: only an offset says which.
* Booleans: true/false, yes/no, 1/0, 是/否, Y/N (any case). Choices (Literal, Enum) match ignoring case.
* Encoding: a byte-order mark decides; else UTF-8 if the bytes are valid UTF-8; else Big5 as Windows
  writes it (cp950), then Big5-HKSCS; else the file is refused, naming the first undecodable byte.

Every row is validated before anything is returned; any problem raises `ImportFailed` listing them all.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import functools
import io
import json
import re
import types
import typing
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import Enum
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    FutureDate,
    FutureDatetime,
    NaiveDatetime,
    PastDate,
    PastDatetime,
    ValidationError,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

__all__ = [
    "EXTENSIONS",
    "ImportFailed",
    "ParsedFile",
    "RecordImportError",
    "RowProblem",
    "UnreadableFile",
    "field_choices",
    "import_file",
    "parse_file",
    "parse_objects",
    "parse_value_rows",
    "resolve_field",
]

M = TypeVar("M", bound=BaseModel)

EXTENSIONS = (".csv", ".json")
MAX_LISTED = 50  # problems spelled out in ImportFailed's message; `.problems` has them all
AUTO_ENCODINGS = ("utf-8", "cp950", "big5hkscs")  # tried in order when the file has no byte-order mark
TRUE_WORDS = ("true", "yes", "1", "是", "y")
FALSE_WORDS = ("false", "no", "0", "否", "n")
BOOL_SPELLINGS = ("true", "false", "yes", "no", "1", "0", "是", "否", "Y", "N")
DATETIME_FORMATS = "YYYY-MM-DD HH:MM[:SS], YYYY/MM/DD HH:MM[:SS] or ISO 8601 (2024-05-01T09:30+08:00)"
_STRPTIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")
_ZH_AMPM = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})\s*(上午|下午)\s*(\d{1,2}):(\d{2})(?::(\d{2}))?")
_HAS_TIME = re.compile(r"\d[Tt ]\d")  # fromisoformat also takes a bare date; a date-time needs its time
_MAX_SHOWN = 60  # characters of a bad value quoted in a message
_MAX_CHOICES = 20

# pydantic's constrained date-times are marker classes, not datetime subclasses.
_DATETIME_TYPES: tuple[object, ...] = (AwareDatetime, NaiveDatetime, PastDatetime, FutureDatetime)
_DATE_TYPES: tuple[object, ...] = (PastDate, FutureDate)


class RecordImportError(ValueError):
    """A file or its rows could not become records; nothing was imported."""


class UnreadableFile(RecordImportError):
    """The file itself cannot be read: wrong extension, undecodable bytes, not CSV/JSON."""

    def __init__(self, source: str, message: str, *, offset: int | None = None) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.offset = offset  # byte offset of the first undecodable byte, when that is the trouble


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One problem of one row (CSV, header = row 1) or record (JSON, from 1); `field` None: the whole row."""

    row: int
    field: str | None
    value: str | None  # the cell as written, None when empty or missing
    message: str
    valid: tuple[str, ...] = ()  # the choices a person could have written

    def describe(self) -> str:
        """The problem without its file and row: field 'x' = 'bad': message (valid: a, b)."""
        text = self.message
        if self.valid:
            shown = ", ".join(self.valid[:_MAX_CHOICES])
            more = len(self.valid) - _MAX_CHOICES
            text += f" (valid: {shown}{f', … {more} more' if more > 0 else ''})"
        if self.field is None:
            return text
        head = f"field '{self.field}'"
        if self.value is not None:
            head += f" = {_quote(self.value)}"
        return f"{head}: {text}"


class ImportFailed(RecordImportError):
    """Some rows are invalid: `.problems` lists every one; nothing was imported."""

    def __init__(self, source: str, problems: Sequence[RowProblem], unit: str = "row") -> None:
        self.source = source
        self.problems = list(problems)
        self.unit = unit  # 'row' (CSV, spreadsheet numbering) or 'record' (JSON)
        lines = [f"{source}: {_plural(len(self.problems), 'problem')}, nothing imported"]
        lines += [f"{source}:{unit} {p.row}: {p.describe()}" for p in self.problems[:MAX_LISTED]]
        if len(self.problems) > MAX_LISTED:
            lines.append(f"… and {len(self.problems) - MAX_LISTED} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class ParsedFile(Generic[M]):
    """What `import_file` read: the records, the encoding the bytes were decoded with, the rows read."""

    records: list[M]
    encoding: str  # 'utf-8', 'utf-8-sig', 'utf-16', 'cp950', 'big5hkscs' or the one passed in
    rows: int  # data rows (CSV, blank ones not counted) or records (JSON): len(records)


def import_file(path: Path, model: type[M], *, tz: tzinfo, encoding: str | None = None) -> ParsedFile[M]:
    """Every record of a .csv or .json file, validated as `model`, with the encoding used; all or nothing."""
    source = str(path)
    suffix = path.suffix.casefold()
    if suffix not in EXTENSIONS:
        kind = f"'{path.suffix}'" if path.suffix else "extension-less"
        raise UnreadableFile(source, f"cannot import {kind} files (valid: {', '.join(EXTENSIONS)})")
    text, used = _decode(path.read_bytes(), source, encoding)
    schema = _schema(model)
    if suffix == ".csv":
        records = _from_csv(text, model, schema, source, tz)
    else:
        records = _from_json(text, model, schema, source, tz)
    return ParsedFile(records, used, len(records))


def parse_file(path: Path, model: type[M], *, tz: tzinfo, encoding: str | None = None) -> list[M]:
    """The records of a .csv or .json file (`import_file` without the encoding report)."""
    return import_file(path, model, tz=tz, encoding=encoding).records


def parse_value_rows(
    rows: Sequence[Mapping[str, str | None]],
    model: type[M],
    source_name: str,
    tz: tzinfo,
    *,
    first_row: int = 2,
) -> list[M]:
    """Records from rows already split into header → cell (another reader's), numbered from `first_row`.

    Keys are read like CSV headers (header problems are reported at row `first_row - 1`); cells like
    CSV cells. All or nothing: ImportFailed lists every problem.
    """
    if not rows:
        return []
    schema = _schema(model)
    headers = list(dict.fromkeys(key for row in rows for key in row))
    cells = ((first_row + i, [row.get(key) for key in headers]) for i, row in enumerate(rows))
    return _from_table(headers, cells, model, schema, source_name, tz, header_row=first_row - 1)


# --- decoding ---------------------------------------------------------------------------------------------


def _decode(data: bytes, source: str, encoding: str | None) -> tuple[str, str]:
    """The text and the encoding it was decoded with (see the module docstring for the order)."""
    if data.startswith(b"PK\x03\x04"):
        raise UnreadableFile(
            source, "a zip file (an Excel .xlsx workbook?), not text: save it as 'CSV UTF-8'"
        )
    if encoding is not None:
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise UnreadableFile(source, f"unknown encoding {encoding!r}") from None
        return _decode_as(data, source, (name,))
    if data.startswith(codecs.BOM_UTF8):
        return _decode_as(data, source, ("utf-8-sig",))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode_as(data, source, ("utf-16",))
    nul = data.find(b"\x00")
    if nul >= 0:
        # No 8-bit text has NUL bytes; decoding one as Big5 would "succeed" on garbage.
        raise UnreadableFile(
            source, f"byte 0x00 at offset {nul}: not text (UTF-16 without a byte-order mark?)", offset=nul
        )
    return _decode_as(data, source, AUTO_ENCODINGS)


def _decode_as(data: bytes, source: str, encodings: Sequence[str]) -> tuple[str, str]:
    """Decoded with the first of `encodings` that fits; else UnreadableFile naming each first bad byte."""
    failures: list[tuple[str, UnicodeDecodeError]] = []
    for name in encodings:
        try:
            # A BOM read with an explicit 'utf-8' would otherwise glue itself to the first header.
            return data.decode(name).removeprefix("\ufeff"), name
        except UnicodeDecodeError as exc:
            failures.append((name, exc))
    where = "; ".join(
        f"byte 0x{data[exc.start]:02x} at offset {exc.start} (line {_line(data, exc.start)}) is not {name}"
        for name, exc in failures
    )
    offset = max(exc.start for _, exc in failures)
    hint = "save it as 'CSV UTF-8' or name its encoding" if len(failures) > 1 else "is that its encoding?"
    raise UnreadableFile(source, f"cannot decode: {where}; {hint}", offset=offset)


# --- the model's fields -----------------------------------------------------------------------------------


Kind = Literal["datetime", "date", "bool", "other"]


@dataclass(frozen=True, slots=True)
class _Field:
    """How to read one model field from a cell."""

    name: str
    key: str  # the key model_validate reads it under (its alias, when it has one)
    zh: str | None
    kind: Kind
    many: bool  # list, tuple or set: a CSV cell is split on ';'
    nullable: bool
    required: bool
    choices: tuple[Any, ...]  # Literal values or Enum values

    def spellings(self) -> str:
        """How a header may name it, for messages."""
        names = [self.name] + ([self.zh] if self.zh else [])
        return " or ".join(f"'{n}'" for n in names)


@dataclass(frozen=True, slots=True)
class _Schema:
    """A model's fields and the header spellings (normalised) that name them."""

    fields: dict[str, _Field]
    spellings: dict[str, str]  # normalised spelling → field name
    by_key: dict[str, str]  # model_validate key → field name

    def resolve(self, header: str) -> list[str]:
        """The fields a header cell could name: the whole cell, else either side of a '/'."""
        header = unicodedata.normalize("NFKC", header)
        whole = self.spellings.get(_norm(header))
        if whole is not None:
            return [whole]
        found: list[str] = []
        for i, char in enumerate(header):
            if char == "/":
                for part in (header[i + 1 :], header[:i]):  # 'zh / en': the English side first
                    name = self.spellings.get(_norm(part))
                    if name is not None and name not in found:
                        found.append(name)
        return found

    def columns(self) -> tuple[str, ...]:
        """Valid column names, for messages: name (zh)."""
        return tuple(f"{f.name} ({f.zh})" if f.zh else f.name for f in self.fields.values())


def _norm(text: str) -> str:
    """A header as compared: NFKC, case-folded, runs of spaces, '-' and '_' as one '_'."""
    return re.sub(r"[\s_\-]+", "_", unicodedata.normalize("NFKC", text).strip().casefold())


@functools.lru_cache(maxsize=128)
def _schema(model: type[BaseModel]) -> _Schema:
    """How to read `model`'s fields; TypeError if two fields share a header spelling."""
    fields: dict[str, _Field] = {}
    spellings: dict[str, str] = {}
    for name, info in model.model_fields.items():
        spec = _field(model, name, info)
        fields[name] = spec
        for spelling in {name, spec.key, info.alias, spec.zh} - {None}:
            assert spelling is not None
            other = spellings.setdefault(_norm(spelling), name)
            if other != name:
                raise TypeError(
                    f"{model.__name__}: header {spelling!r} would name both {other!r} and {name!r}"
                )
    return _Schema(fields, spellings, {f.key: f.name for f in fields.values()})


def _field(model: type[BaseModel], name: str, info: FieldInfo) -> _Field:
    """One field's reading rules, from its annotation and json_schema_extra['zh']."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    zh = extra.get("zh")
    tp, nullable = _unwrap(info.annotation)
    many = typing.get_origin(tp) in (list, tuple, set, frozenset)
    if many:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        tp, _ = _unwrap(args[0] if args else Any)
    return _Field(
        name=name,
        key=_input_key(model, name, info),
        zh=zh if isinstance(zh, str) else None,
        kind=_kind(tp),
        many=many,
        nullable=nullable,
        required=info.is_required(),
        choices=_choices(tp),
    )


def _input_key(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    """The key model_validate reads the field under: its validation alias unless the model reads names."""
    if model.model_config.get("validate_by_alias", True) is False:
        return name
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        alias = next((c for c in alias.choices if isinstance(c, str)), None)
    if isinstance(alias, str):
        return alias
    return info.alias or name


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """The type under Annotated and Optional, and whether None is allowed."""
    nullable = tp is Any or tp is None
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            rest = [a for a in args if a is not type(None)]
            nullable = nullable or len(rest) < len(args)
            if len(rest) != 1:
                return tp, nullable  # a real union: pydantic decides
            tp = rest[0]
        else:
            return tp, nullable


def _kind(tp: Any) -> Kind:
    """Which cell reading a (single, unwrapped) type needs beyond pydantic's own."""
    if tp in _DATETIME_TYPES or (isinstance(tp, type) and issubclass(tp, datetime)):
        return "datetime"
    if tp in _DATE_TYPES or (isinstance(tp, type) and issubclass(tp, date)):
        return "date"
    return "bool" if tp is bool else "other"


def _choices(tp: Any) -> tuple[Any, ...]:
    """A Literal's values or an Enum's member values; () for anything else."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tuple(member.value for member in tp)
    return ()


# --- CSV and JSON into rows -------------------------------------------------------------------------------


def _from_csv(text: str, model: type[M], schema: _Schema, source: str, tz: tzinfo) -> list[M]:
    """Records from CSV text: header row 1, data from row 2."""
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise UnreadableFile(source, f"not CSV: {exc}") from None
    if not table or not any(cell.strip() for cell in table[0]):
        raise UnreadableFile(source, "no header row (row 1 must name the columns)")
    cells = enumerate(table[1:], start=2)
    return _from_table(table[0], cells, model, schema, source, tz, header_row=1)


def _from_json(text: str, model: type[M], schema: _Schema, source: str, tz: tzinfo) -> list[M]:
    """Records from JSON text: a list of objects or {"records": [...]}."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(source, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if isinstance(doc, dict) and "records" in doc:
        doc = doc["records"]
    if not isinstance(doc, list):
        raise UnreadableFile(source, 'expected a list of objects or {"records": [...]}')
    return parse_objects(doc, model, source, tz)


def parse_objects(objects: Sequence[Any], model: type[M], source: str, tz: tzinfo) -> list[M]:
    """Records from JSON objects already decoded (a file's, or a web request's body), numbered from 1.

    Keys are read like headers (names, zh labels), values like JSON cells (strings read as in CSV: local
    times in `tz`, yes/no, choices ignoring case). All or nothing: ImportFailed lists every problem.
    """
    schema = _schema(model)
    items: list[tuple[int, dict[str, Any]]] = []
    problems: list[RowProblem] = []
    for number, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict):
            problems.append(RowProblem(number, None, None, f"not an object but {type(obj).__name__}"))
            continue
        raw: dict[str, Any] = {}
        for key, value in obj.items():
            names = schema.resolve(str(key))
            if len(names) != 1:
                problems.append(_header_problem(number, str(key), names, schema, "field"))
            elif names[0] in raw:
                problems.append(RowProblem(number, names[0], None, f"given twice (again as {key!r})"))
            else:
                raw[names[0]] = value
        items.append((number, raw))
    records, row_problems = _validate(items, model, schema, tz)
    problems = sorted(problems + row_problems, key=lambda p: p.row)  # stable: field order within a record
    if problems:
        raise ImportFailed(source, problems, unit="record")
    return records


def resolve_field(model: type[BaseModel], key: str) -> str | None:
    """The field a key names (its name, alias or zh label, as a header would), None if none or several."""
    names = _schema(model).resolve(key)
    return names[0] if len(names) == 1 else None


def field_choices(model: type[BaseModel], name: str) -> tuple[str, ...]:
    """The values a field may take when it is a choice (Literal, Enum), as text; () otherwise."""
    spec = _schema(model).fields.get(name)
    if spec is None:
        return ()
    if spec.kind == "bool":
        return ("true", "false")
    return tuple(str(c) for c in spec.choices)


def _from_table(
    headers: Sequence[str],
    rows: Iterable[tuple[int, Sequence[str | None]]],
    model: type[M],
    schema: _Schema,
    source: str,
    tz: tzinfo,
    *,
    header_row: int,
) -> list[M]:
    """Records from a header and numbered rows of cells (CSV, or another reader's rows)."""
    columns: list[str | None] = []  # the field each column fills; None: a column without a header
    problems: list[RowProblem] = []
    seen: dict[str, str] = {}
    for header in headers:
        text = header.strip()
        names = schema.resolve(text) if text else []
        if text and len(names) != 1:
            problems.append(_header_problem(header_row, text, names, schema, "column"))
        elif names and names[0] in seen:
            problems.append(
                RowProblem(header_row, names[0], None, f"two columns: {seen[names[0]]!r} and {text!r}")
            )
        elif names:
            seen[names[0]] = text
        columns.append(names[0] if len(names) == 1 else None)
    for spec in schema.fields.values():
        if spec.required and spec.name not in seen:
            problems.append(
                RowProblem(header_row, spec.name, None, f"required column missing (write {spec.spellings()})")
            )
    if problems:
        # Rows read through a wrong header would only add noise (a misspelt column is 'required' in each).
        raise ImportFailed(source, problems)

    items: list[tuple[int, dict[str, Any]]] = []
    for number, cells in rows:
        if not any(cell and cell.strip() for cell in cells):
            continue  # a blank row (Excel leaves them): skipped, its number kept
        raw: dict[str, Any] = {}
        for index in range(max(len(cells), len(columns))):
            # Spreadsheets drop a row's trailing empty cells: a short row is empty there.
            cell = cells[index] if index < len(cells) else None
            name = columns[index] if index < len(columns) else None
            if name is not None:
                raw[name] = cell
            elif cell and cell.strip():
                where = f"{_column_letter(index)}{number}"
                problems.append(
                    RowProblem(number, None, cell, f"cell {where} = {_quote(cell)} has no column header")
                )
        items.append((number, raw))
    records, row_problems = _validate(items, model, schema, tz)
    problems = sorted(problems + row_problems, key=lambda p: p.row)
    if problems:
        raise ImportFailed(source, problems)
    return records


def _header_problem(row: int, text: str, names: list[str], schema: _Schema, what: str) -> RowProblem:
    """An unknown header (or JSON key), or one that could name several fields."""
    if not names:
        close = difflib.get_close_matches(_norm(text), schema.spellings, n=1, cutoff=0.75)
        guess = f"; did you mean {schema.spellings[close[0]]!r}?" if close else ""
        return RowProblem(row, None, text, f"unknown {what} {_quote(text)}{guess}", schema.columns())
    return RowProblem(row, None, text, f"{what} {_quote(text)} could name any of {', '.join(names)}")


# --- cells into model input -------------------------------------------------------------------------------


class _CellError(ValueError):
    """A cell that cannot become its field's value (message and the choices to offer)."""

    def __init__(self, message: str, valid: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.valid = valid


def _validate(
    items: Sequence[tuple[int, dict[str, Any]]], model: type[M], schema: _Schema, tz: tzinfo
) -> tuple[list[M], list[RowProblem]]:
    """Every row validated: the records, and the problems (fields in model order, the row's own last)."""
    order = {name: i for i, name in enumerate(schema.fields)}
    records: list[M] = []
    problems: list[RowProblem] = []
    for number, raw in items:
        data: dict[str, Any] = {}
        by_field: dict[str, RowProblem] = {}
        for name, value in raw.items():
            spec = schema.fields[name]
            try:
                if _is_empty(value):
                    if spec.required:  # no default to fall back on: None, if the type allows it
                        if not spec.nullable:
                            raise _CellError("required, but empty")
                        data[spec.key] = None
                    continue
                data[spec.key] = _cell(value, spec, tz)
            except _CellError as exc:
                by_field[name] = RowProblem(number, name, _shown(value), str(exc), exc.valid)
        whole: list[RowProblem] = []  # the row's own (model validators): no field
        try:
            records.append(model.model_validate(data))
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                problem = _from_pydantic(error, number, raw, schema)
                if problem.field is None:
                    whole.append(problem)
                else:
                    # A field that failed above was left out (pydantic: missing); unions give several errors.
                    by_field.setdefault(problem.field, problem)
        problems += sorted(by_field.values(), key=lambda p: order[p.field or ""]) + whole
    return records, problems


def _from_pydantic(error: ErrorDetails, row: int, raw: Mapping[str, Any], schema: _Schema) -> RowProblem:
    """A pydantic error as a RowProblem: its field, the cell as written, a plain message, the choices."""
    loc = error["loc"]
    name = schema.by_key.get(str(loc[0])) if loc else None
    spec = schema.fields.get(name) if name else None
    message = error["msg"]
    valid: tuple[str, ...] = ()
    kind = error["type"]
    if kind == "missing":
        message = "required, but missing"
    elif kind in ("literal_error", "enum") and spec is not None:
        message, valid = "not one of the choices", tuple(str(c) for c in spec.choices)
    else:
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if len(loc) > 1 and isinstance(loc[1], int):
        message = f"item {loc[1] + 1}: {message}"
    value = _shown(raw.get(name)) if name else None
    return RowProblem(row, name, value, message, valid)


def _cell(value: Any, spec: _Field, tz: tzinfo) -> Any:
    """A cell (or JSON value) as the model's input: lists split, date-times, booleans and choices read."""
    if spec.many and isinstance(value, str):
        value = [item for item in (part.strip() for part in value.split(";")) if item]
    if spec.many and isinstance(value, list):
        out = []
        for index, item in enumerate(value, start=1):
            try:
                out.append(_one(item, spec, tz))
            except _CellError as exc:
                raise _CellError(f"item {index}: {exc}", exc.valid) from None
        return out
    return _one(value, spec, tz)


def _one(value: Any, spec: _Field, tz: tzinfo) -> Any:
    """One value read by its kind; what is not a string is left to pydantic."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if spec.kind == "datetime":
        return _datetime(text, tz)
    if spec.kind == "date":
        return _date(text)
    if spec.kind == "bool":
        folded = text.casefold()
        if folded in TRUE_WORDS or folded in FALSE_WORDS:
            return folded in TRUE_WORDS
        raise _CellError("not a yes/no value", BOOL_SPELLINGS)
    if spec.choices and text not in spec.choices:
        # People type 'Repair' for 'repair': accept when it matches one choice exactly but for case.
        same = [c for c in spec.choices if isinstance(c, str) and c.casefold() == text.casefold()]
        if len(same) == 1:
            return same[0]
    return text


def _datetime(text: str, tz: tzinfo) -> datetime:
    """An aware date-time: an offset if written, else the wall clock of `tz`."""
    parsed: datetime | None = None
    if _HAS_TIME.search(text):
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
    for fmt in _STRPTIME_FORMATS if parsed is None else ():
        try:
            parsed = datetime.strptime(text, fmt)  # naive: zoned below
            break
        except ValueError:
            continue
    if parsed is None and (m := _ZH_AMPM.fullmatch(text)):
        year, month, day, half, hour, minute, second = m.groups()
        h = int(hour)
        if 1 <= h <= 12:
            h = h % 12 + (12 if half == "下午" else 0)
            try:
                parsed = datetime(int(year), int(month), int(day), h, int(minute), int(second or 0))
            except ValueError:
                parsed = None
    if parsed is None:
        raise _CellError(f"not a date and time; write {DATETIME_FORMATS}")
    if parsed.tzinfo is not None:
        return parsed
    return _zoned(parsed, tz)


def _zoned(wall: datetime, tz: tzinfo) -> datetime:
    """A wall-clock time in `tz`; refused when a clock change skips or repeats it."""
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    shown = f"{wall:%Y-%m-%d %H:%M}"
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        raise _CellError(f"{shown} does not exist in {tz}: the clocks skip it")
    earlier, later = (
        f"{wall:%Y-%m-%dT%H:%M}{d.strftime('%z')[:3]}:{d.strftime('%z')[3:]}" for d in (first, second)
    )
    raise _CellError(f"{shown} happens twice in {tz} (the clocks go back): write {earlier} or {later}")


def _date(text: str) -> date:
    """A date: YYYY-MM-DD or YYYY/MM/DD (month and day may have one digit)."""
    for fmt in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise _CellError("not a date; write YYYY-MM-DD or YYYY/MM/DD")


# --- small helpers ----------------------------------------------------------------------------------------


def _is_empty(value: Any) -> bool:
    """An empty cell, a blank string, or JSON null."""
    return value is None or (isinstance(value, str) and not value.strip())


def _shown(value: Any) -> str | None:
    """A value as a person wrote it: the cell's text, or the JSON value; None when empty."""
    if _is_empty(value):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _quote(text: str) -> str:
    """A value in quotes for a message, shortened when long."""
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return repr(text)


def _line(data: bytes, offset: int) -> int:
    """The line (from 1) a byte offset is on."""
    return data.count(b"\n", 0, offset) + 1


def _plural(n: int, word: str) -> str:
    """'1 problem', '3 problems'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _column_letter(index: int) -> str:
    """A spreadsheet column's letters: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
