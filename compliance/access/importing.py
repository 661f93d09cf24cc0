"""Access-control exports into the access model: holders, grants, badge events (pure parsing, no database).

Two sources, each all or nothing: a bad row raises compliance.importing's `ImportFailed` naming the
file, the row (CSV: header = row 1; JSON: record from 1) and the field, and nothing is returned.
docs/access-import.md lists the columns with their Chinese names.

* The generic format, three CSV or JSON files read by compliance.importing (its encodings, header
  spellings, date-times in the site's zone when written without an offset, row numbering):
  - holders 人員: person_id, name, holder_type (employee|contractor|vendor|futures_affiliate|other),
    org_unit, left_at;
  - grants 授權: grant_id, person_id, credential_id, credential_type (card|pin|biometric|key), zones
    (';'-separated; '*' = every zone), schedule ('24x7', 'mon-fri 08:00-18:00', ...; empty = 24x7),
    valid_from, valid_to (excluded), requester, approver, implementer, ticket, work_order, justification;
  - badges 刷卡紀錄: at, door, zone (empty: the door's zone from `door_zones`), credential_id, granted
    (empty = yes), direction (in|out|unknown; empty = unknown).
  A person_id or grant_id given twice is a problem of the later row.
* A ZKTeco PullSDK export (C3 / inBio panels: the tables `user`, `userauthorize`, `transaction` saved as
  CSV): see `parse_zkteco`.

Rows are checked in two passes: compliance.importing validates each row, then the checks across rows
(duplicates, a door's zone, a PIN of another table) run; each pass reports every problem it finds.
Output is sorted (holders by person, grants by id, badges by time, door, credential), so the same files
always parse to equal values.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from compliance.access.model import ALWAYS, Badge, Direction, Grant, Holder, HolderType, Schedule
from compliance.importing import (
    _HAS_TIME,
    ImportFailed,
    RecordImportError,
    RowProblem,
    UnreadableFile,
    _datetime,
    _decode,
    _Field,
    _from_table,
    _one,
    _Schema,
    _schema,
    parse_file,
)
from compliance.kinds import field

__all__ = [
    "DENIED_EVENTS",
    "GRANTED_EVENTS",
    "OTHER_EVENTS",
    "ZK_TABLES",
    "BadgeIn",
    "ExportFailed",
    "GrantIn",
    "GrantRow",
    "HolderIn",
    "ZkAuthorize",
    "ZkExport",
    "ZkTransaction",
    "ZkUser",
    "parse_badges",
    "parse_grants",
    "parse_holders",
    "parse_zkteco",
]

M = TypeVar("M", bound=BaseModel)
CredentialType = Literal["card", "pin", "biometric", "key"]
_CONFIG = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)


# --- the generic format -----------------------------------------------------------------------------------


class HolderIn(BaseModel):
    """A row of the holders file (HR or the vendor list)."""

    model_config = _CONFIG

    person_id: str = field("人員編號", "Person id", min_length=1)
    name: str = field("姓名", "Name", min_length=1)
    holder_type: HolderType = field(
        "身分別", "employee, contractor, vendor, futures_affiliate or other", "employee"
    )
    org_unit: str = field("單位", "Department or company", "")
    left_at: AwareDatetime | None = field("離職日", "Left at (employment or contract ended)", None)


class GrantIn(BaseModel):
    """A row of the grants file: one credential's access to zones, on a schedule, with its approvals."""

    model_config = _CONFIG

    grant_id: str = field("授權編號", "Grant id", min_length=1)
    person_id: str = field("人員編號", "Person id", min_length=1)
    credential_id: str = field("憑證編號", "Credential (card number, PIN id, ...)", min_length=1)
    credential_type: CredentialType = field("憑證類型", "card, pin, biometric or key", "card")
    zones: list[str] = field("區域", "Zones, ';'-separated ('*' = every zone)", min_length=1)
    schedule: str = field("授權時段", "Schedule: '24x7' or 'mon-fri 08:00-18:00'", "24x7")
    valid_from: AwareDatetime = field("生效時間", "Valid from")
    valid_to: AwareDatetime | None = field("失效時間", "Valid to (excluded)", None)
    requester: str = field("申請人", "Requested by", "")
    approver: str = field("核准人", "Approved by", "")
    implementer: str = field("設定人", "Set up (implemented) by", "")
    ticket: str = field("申請單號", "Request ticket", "")
    work_order: str = field("工單編號", "Work order", "")
    justification: str = field("申請理由", "Justification", "")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, text: str) -> str:
        Schedule.parse(text)  # a ScheduleError (a ValueError) names the valid forms
        return text

    @field_validator("valid_to")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("valid_from")  # absent when valid_from itself failed
        if end is not None and start is not None and end <= start:
            raise ValueError("must be after valid_from")
        return end


class BadgeIn(BaseModel):
    """A row of the badge events file: one credential presented at one door, and the panel's verdict."""

    model_config = _CONFIG

    at: AwareDatetime = field("時間", "When")
    door: str = field("門", "Door", min_length=1)
    zone: str | None = field("區域", "Zone (empty: the door's zone from the door map)", None)
    credential_id: str = field("憑證編號", "Credential (card number, ...)", min_length=1)
    granted: bool = field("允許", "Let in (yes) or refused (no)", True)
    direction: Direction = field("方向", "in, out or unknown", "unknown")


@dataclass(frozen=True, slots=True)
class GrantRow:
    """A grant as imported, with what `Grant` does not keep: the credential's type and the justification."""

    grant: Grant
    credential_type: CredentialType = "card"
    justification: str = ""


def parse_holders(path: Path, tz: tzinfo, *, encoding: str | None = None) -> list[Holder]:
    """The holders of a holders file, sorted by person_id; all or nothing."""
    rows = parse_file(path, HolderIn, tz=tz, encoding=encoding)
    checks = _Checks(path, encoding)
    _unique(checks, rows, "person_id")
    checks.raise_any()
    holders = [Holder(r.person_id, r.name, r.holder_type, r.org_unit, r.left_at) for r in rows]
    return sorted(holders, key=lambda h: h.person_id)


def parse_grants(path: Path, tz: tzinfo, *, encoding: str | None = None) -> list[GrantRow]:
    """The grants of a grants file, sorted by grant_id; all or nothing."""
    rows = parse_file(path, GrantIn, tz=tz, encoding=encoding)
    checks = _Checks(path, encoding)
    _unique(checks, rows, "grant_id")
    checks.raise_any()
    out = [
        GrantRow(
            Grant(
                r.grant_id,
                r.person_id,
                r.credential_id,
                tuple(sorted(set(r.zones))),
                r.valid_from,
                r.valid_to,
                Schedule.parse(r.schedule),
                r.requester,
                r.approver,
                r.implementer,
                r.ticket,
                r.work_order,
            ),
            r.credential_type,
            r.justification,
        )
        for r in rows
    ]
    return sorted(out, key=lambda g: g.grant.grant_id)


def parse_badges(
    path: Path, tz: tzinfo, door_zones: Mapping[str, str] | None = None, *, encoding: str | None = None
) -> list[Badge]:
    """The badge events of a badges file, sorted by time; an empty zone is the door's in `door_zones`."""
    if path.suffix.casefold() != ".csv":
        return _generic_badges(path, tz, door_zones, encoding=encoding)  # JSON, and the refusals
    return _csv_badges(path, tz, door_zones or {}, encoding)


def _generic_badges(
    path: Path, tz: tzinfo, door_zones: Mapping[str, str] | None = None, *, encoding: str | None = None
) -> list[Badge]:
    """parse_badges through compliance.importing's model per row: JSON, and the reference for CSV."""
    rows = parse_file(path, BadgeIn, tz=tz, encoding=encoding)
    door_zones = door_zones or {}
    checks = _Checks(path, encoding)
    badges: list[Badge] = []
    for index, r in enumerate(rows):
        zone = r.zone or door_zones.get(r.door)
        if zone is None:
            checks.add(index, "zone", None, _no_zone(r.door, door_zones))
            continue
        badges.append(Badge(r.at, r.door, zone, r.credential_id, r.granted, r.direction))
    checks.raise_any()
    return sorted(badges, key=_badge_order)


def _no_zone(door: str, door_zones: Mapping[str, str]) -> str:
    """The problem of a row with no zone whose door is not mapped."""
    mapped = ", ".join(sorted(door_zones)) or "none"
    return f"empty, and door {door!r} has no zone in the door map (mapped doors: {mapped})"


# --- badges.csv without a model per row ---------------------------------------------------------------------
#
# A quarter's badges.csv is a million rows: a pydantic model per row took 45 s and 2.2 GB. Here the
# header is read by compliance.importing itself (same spellings, same header problems), then each cell
# goes through the generic path's own converters (`_one`: yes/no, choices; date-times as `_datetime`
# reads them, ISO ones first), memoised per distinct cell where the value cannot depend on the row
# (doors, zones, credentials, yes/no, directions: that also keeps one string per door or card instead
# of one per row). A row that any converter refuses, or that is not plain (text in a column without a
# header, a cell beyond the header, a blank required cell), goes through the generic path as it is, so
# its value or its problems are the generic ones; the rows read fast would have had none.

# Line breaks str.splitlines knows but csv over io.StringIO(newline="") does not (see _lines).
_OTHER_BREAKS = ("\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_CHUNK = 1 << 20  # characters split into lines at a time
_BADGE_FIELDS = ("at", "door", "zone", "credential_id", "granted", "direction")  # BadgeIn's, in Badge's order


class _Refused(ValueError):
    """A cell the fast path leaves to the generic one (which gives the value or the problem)."""


@dataclass(slots=True)
class _BadgeRows:
    """A badges CSV read fast: badges in file order, with a hole for each row left to the generic path."""

    header: list[str]
    badges: list[Badge | None]
    slow: list[tuple[int, list[str]]]  # (row number, cells) of the rows left to the generic path
    holes: list[int]  # where each of them goes in `badges`
    no_zone: list[tuple[int, str]]  # (row number, door) of the rows with no zone


def _csv_badges(path: Path, tz: tzinfo, door_zones: Mapping[str, str], encoding: str | None) -> list[Badge]:
    """parse_badges of a CSV file: the generic path's values and problems, without a model per row."""
    source = str(path)
    read = _read_badges(path, tz, door_zones, encoding)
    badges = read.badges
    if read.slow:
        # Raises the generic problems of these rows: the file's, since the fast rows have none.
        records = _from_table(read.header, read.slow, BadgeIn, _schema(BadgeIn), source, tz, header_row=1)
        for (number, _), hole, r in zip(read.slow, read.holes, records, strict=True):
            zone = r.zone or door_zones.get(r.door)
            if zone is None:
                read.no_zone.append((number, r.door))
            else:
                badges[hole] = Badge(r.at, r.door, zone, r.credential_id, r.granted, r.direction)
    if read.no_zone:
        problems = [
            RowProblem(number, "zone", None, _no_zone(door, door_zones))
            for number, door in sorted(read.no_zone)
        ]
        raise ImportFailed(source, problems)
    out = [b for b in badges if b is not None]  # every hole is filled now: rows without a zone raised
    del badges, read  # the sort's keys need the room
    out.sort(key=_badge_order)
    return out


def _read_badges(path: Path, tz: tzinfo, door_zones: Mapping[str, str], encoding: str | None) -> _BadgeRows:
    """The rows of a badges CSV read fast; an unreadable file or a bad header is raised as generically."""
    source = str(path)
    text, _ = _decode(path.read_bytes(), source, encoding)
    reader = csv.reader(_lines(text))
    try:
        header = next(reader, [])
        failure = _header_failure(header, source, tz)
        if failure is not None:
            for _ in reader:  # the generic path reads the whole file first: a CSV error comes first
                pass
            raise failure
        out = _BadgeRows(header, [], [], [], [])
        _fast_rows(reader, header, tz, door_zones, out)
    except csv.Error as exc:
        raise UnreadableFile(source, f"not CSV: {exc}") from None
    return out


def _fast_rows(
    reader: Iterator[list[str]],
    header: list[str],
    tz: tzinfo,
    door_zones: Mapping[str, str],
    out: _BadgeRows,
) -> None:
    """The tight loop: each data row (from row 2) read fast into `out`, or left to the generic path."""
    schema = _schema(BadgeIn)
    columns = [_column(schema, cell) for cell in header]
    width = len(header)
    unmapped = [i for i, name in enumerate(columns) if name is None]
    picks = [_pick(schema, columns, name, tz) for name in _BADGE_FIELDS]
    (i_at, at_of), (i_door, door_of), (i_zone, zone_of), (i_cred, cred_of), (i_ok, ok_of), (i_dir, dir_of) = (
        picks
    )
    badges, slow, holes, no_zone = out.badges, out.slow, out.holes, out.no_zone
    for number, cells in enumerate(reader, start=2):
        try:
            row = cells if len(cells) == width and not unmapped else _plain(cells, width, unmapped)
            at = at_of(row[i_at])
            door = door_of(row[i_door])
            zone = zone_of(row[i_zone]) or door_zones.get(door)
            credential, granted, direction = cred_of(row[i_cred]), ok_of(row[i_ok]), dir_of(row[i_dir])
        except ValueError:  # _Refused, or a generic converter's _CellError
            if any(cell and cell.strip() for cell in cells):  # a blank row is skipped, as generically
                slow.append((number, cells))
                holes.append(len(badges))
                badges.append(None)
            continue
        if zone is None:
            no_zone.append((number, door))
        else:
            badges.append(Badge(at, door, zone, credential, granted, direction))


def _header_failure(header: list[str], source: str, tz: tzinfo) -> RecordImportError | None:
    """What the generic path says of the header row (no header, unknown or missing columns), or None."""
    if not any(cell.strip() for cell in header):
        return UnreadableFile(source, "no header row (row 1 must name the columns)")
    try:
        _from_table(header, (), BadgeIn, _schema(BadgeIn), source, tz, header_row=1)
    except ImportFailed as exc:
        return exc
    return None


def _column(schema: _Schema, header: str) -> str | None:
    """The field a header cell names, as compliance.importing reads it (None: a column without a header)."""
    text = header.strip()
    names = schema.resolve(text) if text else []
    return names[0] if len(names) == 1 else None


def _plain(cells: list[str], width: int, unmapped: Sequence[int]) -> list[str]:
    """The cells fitted to the header's width (a short row is empty there); _Refused for a stray text."""
    stray = [cells[i] for i in unmapped if i < len(cells)] + cells[width:]
    if any(cell.strip() for cell in stray):
        raise _Refused("text in a column without a header")
    return cells[:width] + [""] * (width - len(cells))


def _pick(
    schema: _Schema, columns: list[str | None], name: str, tz: tzinfo
) -> tuple[int, Callable[[str], Any]]:
    """(the column of a field, the reader of its cells); a field without a column reads as its default."""
    default = BadgeIn.model_fields[name].default
    if name not in columns:
        return 0, _constant(default)
    return columns.index(name), _converter(schema.fields[name], tz, default)


def _converter(spec: _Field, tz: tzinfo, default: object) -> Callable[[str], Any]:
    """A cell as the field's value, as the generic path reads it; ValueError where that path must decide."""
    if spec.kind == "datetime":
        return _datetime_reader(tz)

    def read(cell: str) -> Any:
        if not cell.strip():
            if spec.required:
                raise _Refused("required, but empty")
            return default
        value = _one(cell, spec, tz)  # a _CellError (a ValueError) for a bad yes/no
        if spec.choices and value not in spec.choices:
            raise _Refused("not one of the choices")  # pydantic's literal_error, through the generic path
        return value

    # Doors, zones, cards, yes/no and directions repeat: read each distinct cell once, keep one string.
    return functools.lru_cache(maxsize=None)(read)


def _constant(value: object) -> Callable[[str], Any]:
    """The reader of a field without a column: its default, whatever the row."""
    return lambda _cell: value


def _datetime_reader(tz: tzinfo) -> Callable[[str], datetime]:
    """`_datetime` of compliance.importing, with a cheaper zoning of the usual ISO wall-clock times."""
    has_time_at = _HAS_TIME.match
    zone = _zoner(tz)

    def read(cell: str) -> datetime:
        text = cell.strip()
        if not text:
            raise _Refused("required, but empty")
        if has_time_at(text, 9) is not None:  # YYYY-MM-DD[T ]hh...: `_datetime` tries fromisoformat first
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                return parsed  # an offset was written (a fixed `timezone`)
            if parsed is not None and (value := zone(parsed)) is not None:
                return value
        value = _datetime(text, tz)  # other formats; skipped or repeated times: the generic problem
        if value.utcoffset() is None:
            raise _Refused("no UTC offset")  # AwareDatetime decides, through the generic path
        return value

    return read


def _zoner(tz: tzinfo) -> Callable[[datetime], datetime | None]:
    """A naive wall-clock time in `tz` as `_zoned` gives it, or None where `_zoned` must decide."""
    if type(tz) is not ZoneInfo:

        def other(wall: datetime) -> datetime | None:
            value = wall.replace(tzinfo=tz)  # fold 0, as fromisoformat gives it
            offset = value.utcoffset()
            return value if offset is not None and offset == value.replace(fold=1).utcoffset() else None

        return other
    offset_of = tz.utcoffset

    def zoneinfo(wall: datetime) -> datetime | None:
        # datetime.replace costs 1-2 us on Python 3.11, the constructor 0.2 us; ZoneInfo.utcoffset reads
        # only the wall-clock fields and the fold, so the naive times ask it what `_zoned` asks it.
        y, mo, d, h, mi, s, us = (
            wall.year,
            wall.month,
            wall.day,
            wall.hour,
            wall.minute,
            wall.second,
            wall.microsecond,
        )
        if offset_of(wall) != offset_of(datetime(y, mo, d, h, mi, s, us, fold=1)):
            return None  # the clocks skip or repeat it
        return datetime(y, mo, d, h, mi, s, us, tz)

    return zoneinfo


def _lines(text: str) -> Iterator[str]:
    """The lines csv.reader(io.StringIO(text, newline="")) reads, without StringIO's 4 bytes a character.

    StringIO with newline="" ends a line at '\\n', '\\r' or '\\r\\n'; so does str.splitlines, and it
    ends one at some other characters too: text holding any of those goes through StringIO.
    """
    if any(mark in text for mark in _OTHER_BREAKS):
        return iter(io.StringIO(text, newline=""))
    # Lines are handed over by itertools (no Python frame per line); the chunks end just after a
    # newline, so a CR LF is never split between two of them.
    return itertools.chain.from_iterable(chunk.splitlines(keepends=True) for chunk in _chunks(text))


def _chunks(text: str) -> Iterator[str]:
    """`text` in pieces of about _CHUNK characters, each but the last ending with a newline."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + _CHUNK) + 1 or len(text)
        yield text[start:end]
        start = end


# --- ZKTeco PullSDK export --------------------------------------------------------------------------------
#
# Tables and columns: ZKTeco "PullSDK Interfaces User Guide" V2.0 (2012), appendix "data tables", as
# implemented by pyzkaccess (github.com/bdragon300/pyzkaccess, pyzkaccess/tables.py): user (CardNo, Pin,
# Password, Group, StartTime, EndTime, SuperAuthorize), userauthorize (Pin, AuthorizeTimezoneId,
# AuthorizeDoorId), transaction (Cardno, Pin, Verified, DoorID, EventType, InOutState, Time_second).
# Column names are the model's field names so that a problem names the column as the export spells it.

ZK_TABLES = ("user", "userauthorize", "transaction")
# The ZKTeco clock starts at 2000-01-01 00:00 (see _zk_wall); a grant with no StartTime and no `since`
# is taken to have been in force since then: its real issue date is unknown, not recent.
ZK_EPOCH = datetime(2000, 1, 1)
# ZKAccess creates the time zone "Accessible 24 hours" first (ZKAccess 5.0 help, "Access Control Time
# Zones": it cannot be deleted), so its id is 1. Other ids are the site's own: pass them as `timezones`.
ZK_24H_TIMEZONE = 1

# EventType codes: PullSDK User Guide appendix "event types", as listed by pyzkaccess (enums.py,
# EVENT_TYPES). A credential the panel verified and opened for is let in; one it refused is denied; the
# rest are door, alarm and device events, not badge events (26 and 32 are a step of a multi-card opening,
# whose opening is logged as 3, 15 or 203).
GRANTED_EVENTS: Mapping[int, str] = {
    0: "normal punch open", 1: "punch during normal open time zone", 2: "first card normal open (card)",
    3: "multi-card open (card)", 4: "emergency password open", 14: "press fingerprint open",
    15: "multi-card open (fingerprint)", 16: "fingerprint during normal open time zone",
    17: "card plus fingerprint open", 18: "first card normal open (fingerprint)",
    19: "first card normal open (card plus fingerprint)", 101: "duress password open",
    103: "duress fingerprint open", 203: "multi-card open (card plus fingerprint)",
}  # fmt: skip
DENIED_EVENTS: Mapping[int, str] = {
    20: "too short punch interval", 21: "door inactive time zone (card)", 22: "illegal time zone",
    23: "access denied", 24: "anti-passback", 25: "interlock", 27: "unregistered card", 29: "card expired",
    30: "password error", 31: "too short fingerprint pressing interval", 33: "fingerprint expired",
    34: "unregistered fingerprint", 35: "door inactive time zone (fingerprint)",
}  # fmt: skip
OTHER_EVENTS: Mapping[int, str] = {
    5: "open during normal open time zone", 6: "linkage event triggered", 7: "cancel alarm",
    8: "remote opening", 9: "remote closing", 10: "disable intraday normal open time zone",
    11: "enable intraday normal open time zone", 12: "open auxiliary output", 13: "close auxiliary output",
    26: "multi-card authentication (card)", 28: "opening timeout",
    32: "multi-card authentication (fingerprint)", 36: "door inactive time zone (exit button)",
    37: "failed to close during normal open time zone", 102: "opened accidentally",
    200: "door opened correctly", 201: "door closed correctly", 202: "exit button open",
    204: "normal open time zone over", 205: "remote normal opening", 206: "device start",
    220: "auxiliary input disconnected", 221: "auxiliary input shorted", 255: "door and alarm status",
}  # fmt: skip
# InOutState: 0 entry, 1 exit, 2 none (pyzkaccess enums.py, PassageDirection).
_DIRECTIONS: Mapping[int, Direction] = {0: "in", 1: "out"}
_NONE = ("", "0")  # an empty card or PIN: the panel writes 0


class ZkUser(BaseModel):
    """A row of `user`; Name, Department and holder_type are optional extras (ZKAccess personnel)."""

    model_config = _CONFIG

    CardNo: str = ""
    Pin: str = Field(min_length=1)
    Password: str = ""
    Group: str = ""
    StartTime: str = "0"  # YYYYMMDD, 0 = none
    EndTime: str = "0"  # YYYYMMDD (the last valid day), 0 = none
    SuperAuthorize: str = "0"  # read, not used: the sources read do not say how it bends time zones
    Name: str = Field("", json_schema_extra={"zh": "姓名"})
    Department: str = Field("", json_schema_extra={"zh": "部門"})
    holder_type: HolderType = Field("employee", json_schema_extra={"zh": "身分別"})

    @field_validator("StartTime", "EndTime")
    @classmethod
    def _date(cls, text: str) -> str:
        _zk_date(text)
        return text

    @field_validator("EndTime")
    @classmethod
    def _after_start(cls, text: str, info: ValidationInfo) -> str:
        start, end = _zk_date(info.data.get("StartTime", "0")), _zk_date(text)
        if start is not None and end is not None and end < start:
            raise ValueError(f"before StartTime {start:%Y%m%d}")
        return text


class ZkAuthorize(BaseModel):
    """A row of `userauthorize`: a user's doors (bit n-1 = door n) in one access time zone."""

    model_config = _CONFIG

    Pin: str = Field(min_length=1)
    AuthorizeTimezoneId: int = Field(ge=0)
    AuthorizeDoorId: int = Field(ge=0)


class ZkTransaction(BaseModel):
    """A row of `transaction`: one event of a door, Time_second in ZKTeco's packed local time."""

    model_config = _CONFIG

    Cardno: str = ""
    Pin: str = ""
    Verified: str = ""  # the verification mode; not used
    DoorID: int = Field(0, ge=0)
    EventType: int
    InOutState: int = 2
    Time_second: int = Field(ge=0)

    @field_validator("EventType")
    @classmethod
    def _known(cls, code: int) -> int:
        if code not in GRANTED_EVENTS and code not in DENIED_EVENTS and code not in OTHER_EVENTS:
            known = sorted({*GRANTED_EVENTS, *DENIED_EVENTS, *OTHER_EVENTS})
            raise ValueError(f"unknown ZKTeco event type; known: {_ranges(known)}")
        return code

    @field_validator("Time_second")
    @classmethod
    def _time(cls, value: int) -> int:
        _zk_wall(value)
        return value


@dataclass(frozen=True, slots=True)
class ZkExport:
    """A ZKTeco export read: holders, grants (one per user card and time zone), badge events."""

    holders: tuple[Holder, ...]
    grants: tuple[GrantRow, ...]
    badges: tuple[Badge, ...]
    ignored: int = 0  # transactions that are not badge events (door, alarm, device) or name no card or PIN


class ExportFailed(ImportFailed):
    """Problems in several files of one export: `.failures` has each file's; nothing was imported."""

    def __init__(self, failures: Sequence[ImportFailed]) -> None:
        RecordImportError.__init__(self, "\n".join(str(f) for f in failures))
        self.failures = tuple(failures)
        self.source = ", ".join(f.source for f in failures)
        self.problems = [p for f in failures for p in f.problems]  # `.failures` says which file
        self.unit = failures[0].unit


def parse_zkteco(
    folder_or_files: Path | str | Mapping[str, Path] | Sequence[Path],
    tz: tzinfo,
    *,
    doors: Mapping[int, tuple[str, str]] | None = None,
    encoding: str | None = None,
    since: datetime | None = None,
    timezones: Mapping[int, Schedule] | None = None,
) -> ZkExport:
    """Holders, grants and badge events of a ZKTeco PullSDK export; all or nothing across its files.

    `folder_or_files`: a folder holding user.csv, userauthorize.csv and transaction.csv (any case), or
    those files ({table: path}, or paths named after their tables). `doors`: {door number: (door name,
    zone)}; without it door n is ('door-n', 'mr1'), with it every door used must be in it. `since`: when
    grants with no StartTime began (default: 2000-01-01, the ZKTeco clock's start). `timezones`: the
    schedules of the site's access time zones (1 is 24x7 unless given); another id is a problem.

    * holders: person_id = Pin, name = Name or else Pin, org_unit = Department, holder_type (employee).
    * grants: one per user with a card and per time zone of its userauthorize rows (their door masks
      OR-ed): grant_id `zk-{Pin}-{CardNo}` (time zone 1) or `zk-{Pin}-{CardNo}-tz{id}`, zones of its
      doors; valid from StartTime's midnight, valid to the midnight after EndTime (its last day). A user
      with no card or no door holds no grant.
    * badges: the transactions whose EventType is in GRANTED_EVENTS (let in) or DENIED_EVENTS; the
      credential is Cardno, else 'pin:{Pin}' (fingerprint or password); InOutState 0 in, 1 out, else
      unknown; Time_second is local time in `tz` (a time a clock change repeats is its earlier one).
    """
    if since is not None and since.utcoffset() is None:
        raise ValueError("since must be an aware datetime")
    schedules: dict[int, Schedule] = {ZK_24H_TIMEZONE: ALWAYS, **(timezones or {})}
    files = _zk_files(folder_or_files)
    failures: list[ImportFailed] = []
    users = _attempt(failures, files["user"], ZkUser, tz, encoding)
    rights = _attempt(failures, files["userauthorize"], ZkAuthorize, tz, encoding)
    events = _attempt(failures, files["transaction"], ZkTransaction, tz, encoding)
    _raise(failures)

    checks = {t: _Checks(files[t], encoding) for t in ZK_TABLES}
    _unique(checks["user"], users, "Pin")
    by_pin = {u.Pin: u for u in users}
    masks = _zk_masks(rights, by_pin, doors, schedules, checks["userauthorize"])
    badges, ignored = _zk_badges(events, doors, tz, checks["transaction"])
    _raise([f for c in checks.values() if (f := c.failure()) is not None])

    holders = [Holder(u.Pin, u.Name or u.Pin, u.holder_type, u.Department) for u in users]
    start = since or ZK_EPOCH.replace(tzinfo=tz)
    grants = [
        grant
        for (pin, zone_id), mask in masks.items()
        if (grant := _zk_grant(by_pin[pin], zone_id, mask, schedules[zone_id], doors, start, tz)) is not None
    ]
    return ZkExport(
        tuple(sorted(holders, key=lambda h: h.person_id)),
        tuple(sorted(grants, key=lambda g: g.grant.grant_id)),
        tuple(sorted(badges, key=_badge_order)),
        ignored,
    )


def _zk_files(source: Path | str | Mapping[str, Path] | Sequence[Path]) -> dict[str, Path]:
    """{table: its file}: from a folder (user.csv, ... in any case), a mapping, or paths named by table."""
    where = "the export"
    if isinstance(source, Mapping):
        named = [(str(table), Path(path)) for table, path in source.items()]
    elif isinstance(source, str | os.PathLike):
        folder = Path(source)
        if not folder.is_dir():
            raise UnreadableFile(str(folder), "not a folder (a ZKTeco export is a folder of CSV files)")
        where = str(folder)
        named = [(p.stem, p) for p in sorted(folder.iterdir()) if p.suffix.casefold() == ".csv"]
    else:
        named = [(Path(p).stem, Path(p)) for p in source]
    files: dict[str, Path] = {}
    for table, path in named:
        key = table.casefold()
        if key not in ZK_TABLES:
            if isinstance(source, str | os.PathLike):
                continue  # a folder may hold other tables (timezone.csv, holiday.csv, ...)
            raise UnreadableFile(str(path), f"not a table of the export (valid: {', '.join(ZK_TABLES)})")
        if key in files:
            raise UnreadableFile(where, f"two {key} tables: {files[key]} and {path}")
        files[key] = path
    missing = [f"{t}.csv" for t in ZK_TABLES if t not in files]
    if missing:
        raise UnreadableFile(
            where, f"no {', '.join(missing)} (an export is user, userauthorize, transaction)"
        )
    return files


def _zk_masks(
    rights: Sequence[ZkAuthorize],
    by_pin: Mapping[str, ZkUser],
    doors: Mapping[int, tuple[str, str]] | None,
    schedules: Mapping[int, Schedule],
    checks: _Checks,
) -> dict[tuple[str, int], int]:
    """{(Pin, time zone id): its doors' bit mask} with the rows' problems noted in `checks`."""
    masks: dict[tuple[str, int], int] = defaultdict(int)
    for index, r in enumerate(rights):
        ok = True
        if r.Pin not in by_pin:
            checks.add(index, "Pin", r.Pin, "no user with this Pin in the user table")
            ok = False
        if r.AuthorizeTimezoneId not in schedules:
            known = tuple(str(i) for i in sorted(schedules))
            checks.add(
                index,
                "AuthorizeTimezoneId",
                str(r.AuthorizeTimezoneId),
                "an access time zone whose schedule is not given (pass it as `timezones`)",
                known,
            )
            ok = False
        unmapped = [n for n in _door_numbers(r.AuthorizeDoorId) if doors is not None and n not in doors]
        if unmapped and doors is not None:
            checks.add(
                index,
                "AuthorizeDoorId",
                str(r.AuthorizeDoorId),
                f"door(s) {', '.join(map(str, unmapped))} not in the door map",
                tuple(str(n) for n in sorted(doors)),
            )
            ok = False
        if ok:
            masks[(r.Pin, r.AuthorizeTimezoneId)] |= r.AuthorizeDoorId
    return dict(masks)


def _zk_grant(
    user: ZkUser,
    zone_id: int,
    mask: int,
    schedule: Schedule,
    doors: Mapping[int, tuple[str, str]] | None,
    since: datetime,
    tz: tzinfo,
) -> GrantRow | None:
    """The grant of a user's card in one time zone; None when the user has no card or no door."""
    zones = tuple(sorted({_door(n, doors)[1] for n in _door_numbers(mask)}))
    if user.CardNo in _NONE or not zones:
        return None
    start, end = _zk_date(user.StartTime), _zk_date(user.EndTime)
    suffix = "" if zone_id == ZK_24H_TIMEZONE else f"-tz{zone_id}"
    grant = Grant(
        f"zk-{user.Pin}-{user.CardNo}{suffix}",
        user.Pin,
        user.CardNo,
        zones,
        since if start is None else datetime.combine(start, time(0), tz),
        None if end is None else datetime.combine(end + timedelta(days=1), time(0), tz),
        schedule,
    )
    return GrantRow(grant, "card")


def _zk_badges(
    events: Sequence[ZkTransaction], doors: Mapping[int, tuple[str, str]] | None, tz: tzinfo, checks: _Checks
) -> tuple[list[Badge], int]:
    """The badge events among the transactions, and how many transactions were not badge events."""
    badges: list[Badge] = []
    ignored = 0
    for index, e in enumerate(events):
        granted = e.EventType in GRANTED_EVENTS
        credential = e.Cardno if e.Cardno not in _NONE else f"pin:{e.Pin}" if e.Pin not in _NONE else ""
        if not (granted or e.EventType in DENIED_EVENTS) or not credential:
            ignored += 1
            continue
        if doors is not None and e.DoorID not in doors:
            checks.add(
                index,
                "DoorID",
                str(e.DoorID),
                "a door not in the door map",
                tuple(str(n) for n in sorted(doors)),
            )
            continue
        name, zone = _door(e.DoorID, doors)
        at = _zk_wall(e.Time_second).replace(tzinfo=tz)
        badges.append(Badge(at, name, zone, credential, granted, _DIRECTIONS.get(e.InOutState, "unknown")))
    return badges, ignored


def _door(number: int, doors: Mapping[int, tuple[str, str]] | None) -> tuple[str, str]:
    """(door name, zone) of a door number (checked against `doors` beforehand)."""
    return doors[number] if doors is not None else (f"door-{number}", "mr1")


def _door_numbers(mask: int) -> list[int]:
    """The doors of an AuthorizeDoorId bit mask: bit 0 is door 1 (pyzkaccess tables.py, UserAuthorize)."""
    return [bit + 1 for bit in range(mask.bit_length()) if mask >> bit & 1]


def _zk_wall(value: int) -> datetime:
    """Time_second as a wall-clock time; ValueError when it is not one.

    ZKTeco packs a local time as if every month had 31 days: ((year - 2000) * 12 * 31 + (month - 1) * 31
    + day - 1) * 86400 + hour * 3600 + minute * 60 + second (PullSDK User Guide, appendix on
    Time_second; pyzkaccess common.py, ZKDatetimeUtils.zkctime_to_datetime and datetime_to_zkctime).
    """
    days, clock = divmod(value, 86400)
    months, day = divmod(days, 31)
    years, month = divmod(months, 12)
    hour, rest = divmod(clock, 3600)
    try:
        return datetime(2000 + years, month + 1, day + 1, hour, rest // 60, rest % 60)
    except ValueError:
        raise ValueError(
            f"not a ZKTeco time: decodes to day {day + 1} of {2000 + years}-{month + 1:02d}"
        ) from None


def _zk_date(text: str) -> date | None:
    """A `user` StartTime/EndTime: YYYYMMDD (YYYY-MM-DD also read), 0 or empty = none."""
    if text in _NONE:
        return None
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("not a date; ZKTeco writes YYYYMMDD, or 0 for none")


def _ranges(codes: Sequence[int]) -> str:
    """'0-37, 101-103, 200': runs of consecutive numbers."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][-1] + 1:
            runs[-1].append(code)
        else:
            runs.append([code])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


# --- shared -----------------------------------------------------------------------------------------------


class _Checks:
    """Problems across the rows of one parsed file, numbered like compliance.importing once found."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.path = path
        self.encoding = encoding
        self.found: list[tuple[int, str, str | None, str, tuple[str, ...], int | None]] = []

    def add(
        self,
        index: int,
        name: str,
        value: str | None,
        message: str,
        valid: tuple[str, ...] = (),
        *,
        first: int | None = None,
    ) -> None:
        """A problem of the `index`-th record parsed (from 0); `first`: the record it repeats."""
        self.found.append((index, name, value, message, valid, first))

    def failure(self) -> ImportFailed | None:
        """ImportFailed listing the problems found, or None."""
        if not self.found:
            return None
        # Numbered only now: reading the file again costs nothing when there is nothing to report.
        rows = _row_numbers(self.path, self.encoding)
        unit = "record" if self.path.suffix.casefold() == ".json" else "row"
        problems = [
            RowProblem(
                rows[i],
                name,
                value,
                msg if first is None else f"{msg} (first in {unit} {rows[first]})",
                valid,
            )
            for i, name, value, msg, valid, first in self.found
        ]
        return ImportFailed(str(self.path), sorted(problems, key=lambda p: p.row), unit)

    def raise_any(self) -> None:
        """Raise the problems found, if any."""
        failure = self.failure()
        if failure is not None:
            raise failure


def _row_numbers(path: Path, encoding: str | None) -> list[int]:
    """The row (CSV) or record (JSON) number of each record parse_file returned, in order.

    compliance.importing skips blank CSV rows but keeps their numbers; this follows the same rule.
    """
    text, _ = _decode(path.read_bytes(), str(path), encoding)
    if path.suffix.casefold() == ".json":
        doc = json.loads(text)
        records = doc["records"] if isinstance(doc, dict) else doc
        return list(range(1, len(records) + 1))
    rows = csv.reader(io.StringIO(text, newline=""))
    next(rows, None)  # the header, row 1
    return [number for number, cells in enumerate(rows, start=2) if any(c and c.strip() for c in cells)]


def _unique(checks: _Checks, rows: Sequence[BaseModel], name: str) -> None:
    """A key given again is a problem of the later row."""
    first: dict[str, int] = {}
    for index, row in enumerate(rows):
        key = getattr(row, name)
        if key in first:
            checks.add(index, name, key, "given twice", first=first[key])
        else:
            first[key] = index


def _attempt(
    failures: list[ImportFailed], path: Path, model: type[M], tz: tzinfo, encoding: str | None
) -> list[M]:
    """parse_file, with its ImportFailed kept in `failures` (so every file of an export is checked)."""
    try:
        return parse_file(path, model, tz=tz, encoding=encoding)
    except ImportFailed as exc:
        failures.append(exc)
        return []


def _raise(failures: Sequence[ImportFailed]) -> None:
    """Raise one file's ImportFailed, or ExportFailed for several."""
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise ExportFailed(failures)


def _badge_order(b: Badge) -> tuple[datetime, str, str, str, bool, str]:
    return (b.at, b.door, b.credential_id, b.zone, b.granted, b.direction)
