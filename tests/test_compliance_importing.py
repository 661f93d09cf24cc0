"""compliance.importing: CSV and JSON record files into pydantic models, all or nothing."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from compliance.importing import (
    ImportFailed,
    RowProblem,
    UnreadableFile,
    import_file,
    parse_file,
    parse_value_rows,
)

TAIPEI = ZoneInfo("Asia/Taipei")


class Purpose(StrEnum):
    """Why a vendor came."""

    DELIVERY = "delivery"
    REPAIR = "repair"
    AUDIT = "audit"


class VendorVisit(BaseModel):
    """A vendor's visit to the machine room, as the visitor log keeps it."""

    vendor: str = Field(json_schema_extra={"zh": "廠商"})
    visitor: str = Field(json_schema_extra={"zh": "訪客"})
    badge: str | None = Field(None, json_schema_extra={"zh": "識別證"})
    arrived_at: AwareDatetime = Field(json_schema_extra={"zh": "到達時間"})
    left_at: AwareDatetime | None = Field(None, json_schema_extra={"zh": "離開時間"})
    purpose: Purpose = Field(json_schema_extra={"zh": "目的"})
    area: Literal["mr1", "mr2", "ups-room"] = Field("mr1", json_schema_extra={"zh": "區域"})
    escorted: bool = Field(True, json_schema_extra={"zh": "陪同"})
    racks: list[str] = Field(default_factory=list, json_schema_extra={"zh": "機櫃"})
    temperature_c: float | None = Field(None, json_schema_extra={"zh": "體溫"})

    @model_validator(mode="after")
    def _left_after_arrival(self) -> Self:
        if self.left_at is not None and self.left_at < self.arrived_at:
            raise ValueError("left_at is before arrived_at")
        return self


HEADER = "vendor,visitor,badge,arrived_at,left_at,purpose,area,escorted,racks,temperature_c"
ROWS = [
    "中華電信股份有限公司,王小明,A-12,2024-05-01 09:30,2024-05-01 11:00,repair,mr1,是,R01;R02,36.5",
    "台達電子,陳美玲,,2024/05/02 14:00:00,,delivery,ups-room,否,,",
    "精誠資訊,林志強,B-07,2024-05-03T08:15:00+08:00,2024-05-03T09:00:00+08:00,audit,mr2,Y,R10,36.8",
]
CSV_TEXT = "\n".join([HEADER, *ROWS]) + "\n"


def write(tmp_path: Path, name: str, data: str | bytes, encoding: str = "utf-8") -> Path:
    """A file in tmp_path with `data` (text encoded as `encoding`)."""
    path = tmp_path / name
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def fails(path: Path, model: type[BaseModel] = VendorVisit) -> ImportFailed:
    """The ImportFailed that importing `path` raises."""
    with pytest.raises(ImportFailed) as caught:
        parse_file(path, model, tz=TAIPEI)
    return caught.value


# --- encodings --------------------------------------------------------------------------------------------


def test_utf8_csv_with_chinese_text_imports(tmp_path: Path) -> None:
    parsed = import_file(write(tmp_path, "visits.csv", CSV_TEXT), VendorVisit, tz=TAIPEI)
    assert parsed.encoding == "utf-8"
    assert parsed.rows == 3
    first, second, third = parsed.records
    assert first.vendor == "中華電信股份有限公司"
    assert first.visitor == "王小明"
    assert first.arrived_at == datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
    assert first.purpose is Purpose.REPAIR
    assert first.escorted is True
    assert first.racks == ["R01", "R02"]
    assert first.temperature_c == 36.5
    # Empty cells are absent: the defaults apply.
    assert second.badge is None
    assert second.left_at is None
    assert second.racks == []
    assert second.temperature_c is None
    assert second.escorted is False
    assert third.escorted is True
    assert third.area == "mr2"


def test_big5_file_imports_like_the_utf8_one(tmp_path: Path) -> None:
    big5 = CSV_TEXT.encode("cp950")
    with pytest.raises(UnicodeDecodeError):
        big5.decode("utf-8")  # so detection has to get past UTF-8
    utf8 = import_file(write(tmp_path, "utf8.csv", CSV_TEXT), VendorVisit, tz=TAIPEI)
    parsed = import_file(write(tmp_path, "big5.csv", big5), VendorVisit, tz=TAIPEI)
    assert parsed.encoding == "cp950"
    assert parsed.records == utf8.records
    assert parsed.records[0].vendor == "中華電信股份有限公司"


def test_an_encoding_passed_in_is_used_and_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "big5.csv", CSV_TEXT, "cp950")
    parsed = import_file(path, VendorVisit, tz=TAIPEI, encoding="big5")
    assert parsed.encoding == "big5"
    assert parsed.records[1].visitor == "陳美玲"
    with pytest.raises(UnreadableFile, match="offset"):
        import_file(path, VendorVisit, tz=TAIPEI, encoding="utf-8")
    with pytest.raises(UnreadableFile, match="unknown encoding 'klingon'"):
        import_file(path, VendorVisit, tz=TAIPEI, encoding="klingon")


def test_utf8_bom_csv(tmp_path: Path) -> None:
    parsed = import_file(write(tmp_path, "excel.csv", CSV_TEXT, "utf-8-sig"), VendorVisit, tz=TAIPEI)
    assert parsed.encoding == "utf-8-sig"
    assert parsed.records[0].vendor == "中華電信股份有限公司"  # the BOM is not part of the first header


def test_an_undecodable_file_names_the_byte_offset(tmp_path: Path) -> None:
    data = (HEADER + "\n").encode() + b"ACME,\xff\xff,,2024-05-01 09:30,,repair,,,,\n"
    offset = data.index(b"\xff")
    with pytest.raises(UnreadableFile) as caught:
        parse_file(write(tmp_path, "broken.csv", data), VendorVisit, tz=TAIPEI)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'broken.csv'}: cannot decode")
    assert f"byte 0xff at offset {offset} (line 2) is not utf-8" in message
    assert "cp950" in message
    assert "big5hkscs" in message
    assert caught.value.offset == offset


def test_binary_files_are_refused_not_guessed(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="xlsx"):
        parse_file(write(tmp_path, "book.csv", b"PK\x03\x04rest"), VendorVisit, tz=TAIPEI)
    with pytest.raises(UnreadableFile, match="byte 0x00 at offset 1"):
        parse_file(write(tmp_path, "wide.csv", "vendor".encode("utf-16-le")), VendorVisit, tz=TAIPEI)


def test_only_csv_and_json_are_read(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match=r"cannot import '\.xlsx' files \(valid: \.csv, \.json\)"):
        parse_file(write(tmp_path, "visits.xlsx", CSV_TEXT), VendorVisit, tz=TAIPEI)
    with pytest.raises(UnreadableFile, match="extension-less"):
        parse_file(write(tmp_path, "visits", CSV_TEXT), VendorVisit, tz=TAIPEI)
    assert len(parse_file(write(tmp_path, "VISITS.CSV", CSV_TEXT), VendorVisit, tz=TAIPEI)) == 3


# --- JSON -------------------------------------------------------------------------------------------------


def test_json_list_and_records_object(tmp_path: Path) -> None:
    records = [
        {
            "vendor": "中華電信",
            "visitor": "王小明",
            "arrived_at": "2024-05-01 09:30",
            "purpose": "repair",
            "escorted": "否",
            "racks": ["R01", "R02"],
            "temperature_c": 36.5,
        },
        {
            "廠商": "台達電子",
            "訪客": "陳美玲",
            "到達時間": "2024-05-02T14:00:00Z",
            "目的": "audit",
            "機櫃": "R3;R4",
        },
    ]
    as_list = write(tmp_path, "visits.json", json.dumps(records, ensure_ascii=False))
    wrapped = write(tmp_path, "wrapped.JSON", json.dumps({"exported_at": "now", "records": records}))
    first, second = parse_file(as_list, VendorVisit, tz=TAIPEI)
    assert parse_file(wrapped, VendorVisit, tz=TAIPEI) == [first, second]
    assert first.arrived_at == datetime(2024, 5, 1, 9, 30, tzinfo=TAIPEI)
    assert first.escorted is False
    assert first.racks == ["R01", "R02"]
    assert second.vendor == "台達電子"
    assert second.arrived_at == datetime(2024, 5, 2, 14, tzinfo=UTC)
    assert second.racks == ["R3", "R4"]


def test_json_problems_count_records_from_one(tmp_path: Path) -> None:
    records = [
        {"vendor": "a", "visitor": "b", "arrived_at": "2024-05-01 09:30", "purpose": "repair"},
        {"vendor": "a", "visitor": "b", "arrived_at": "2024-05-01 09:30", "purpose": "fun", "colour": "red"},
        "not a visit",
    ]
    failed = fails(write(tmp_path, "visits.json", json.dumps(records)))
    assert failed.unit == "record"
    lines = str(failed).splitlines()
    assert lines[0] == f"{tmp_path / 'visits.json'}: 3 problems, nothing imported"
    assert lines[1].startswith(
        f"{tmp_path / 'visits.json'}:record 2: unknown field 'colour' (valid: vendor (廠商),"
    )
    assert lines[2] == (
        f"{tmp_path / 'visits.json'}:record 2: field 'purpose' = 'fun': not one of the choices"
        " (valid: delivery, repair, audit)"
    )
    assert lines[3] == f"{tmp_path / 'visits.json'}:record 3: not an object but str"


def test_json_that_is_not_a_list_of_records(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match=r"not JSON: .* at line 1 column"):
        parse_file(write(tmp_path, "a.json", "[{"), VendorVisit, tz=TAIPEI)
    with pytest.raises(UnreadableFile, match="expected a list of objects"):
        parse_file(write(tmp_path, "b.json", '{"visits": []}'), VendorVisit, tz=TAIPEI)


# --- headers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "廠商,訪客,識別證,到達時間,離開時間,目的,區域,陪同,機櫃,體溫",
        "廠商 / Vendor,訪客 / Visitor,識別證 / Badge,到達時間 / Arrived at,離開時間 / Left-At,"
        "目的 / purpose,區域 / AREA,陪同 / escorted,機櫃 / racks,體溫 / Temperature C",
        # Full-width letters, as a zh-TW input method types them, in a mixed case.
        " "
        + "".join(chr(ord(c) + 0xFEE0) for c in "VENDOR")
        + " ,訪客/visitor,badge,arrived_at,left_at,purpose,area,escorted,racks,temperature_c",
    ],
)
def test_zh_and_bilingual_headers(tmp_path: Path, header: str) -> None:
    text = "\n".join([header, *ROWS])
    expected = parse_file(write(tmp_path, "plain.csv", CSV_TEXT), VendorVisit, tz=TAIPEI)
    assert parse_file(write(tmp_path, "zh.csv", text), VendorVisit, tz=TAIPEI) == expected


def test_an_unknown_column_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    text = CSV_TEXT.replace("visitor", "visiter", 1)
    failed = fails(write(tmp_path, "visits.csv", text))
    unknown, missing = failed.problems
    assert (unknown.row, unknown.field, unknown.value) == (1, None, "visiter")
    assert "visitor (訪客)" in unknown.valid
    assert (missing.row, missing.field) == (1, "visitor")  # the misspelt column is not there either
    assert str(failed).splitlines()[1] == (
        f"{tmp_path / 'visits.csv'}:row 1: unknown column 'visiter'; did you mean 'visitor'?"
        " (valid: vendor (廠商), visitor (訪客), badge (識別證), arrived_at (到達時間), left_at (離開時間),"
        " purpose (目的), area (區域), escorted (陪同), racks (機櫃), temperature_c (體溫))"
    )


def test_missing_required_columns_are_named(tmp_path: Path) -> None:
    text = "vendor,visitor,badge\nACME,王小明,A-1\n"
    failed = fails(write(tmp_path, "visits.csv", text))
    assert [(p.row, p.field) for p in failed.problems] == [(1, "arrived_at"), (1, "purpose")]
    assert (
        f"{tmp_path / 'visits.csv'}:row 1: field 'arrived_at': required column missing"
        " (write 'arrived_at' or '到達時間')" in str(failed)
    )
    assert "field 'purpose': required column missing" in str(failed)


def test_a_column_given_twice(tmp_path: Path) -> None:
    text = "vendor,廠商,visitor,arrived_at,purpose\nA,B,C,2024-05-01 09:30,repair\n"
    (problem,) = fails(write(tmp_path, "visits.csv", text)).problems
    assert problem == RowProblem(1, "vendor", None, "two columns: 'vendor' and '廠商'")


def test_a_value_under_no_header_is_a_problem_but_empty_trailing_columns_are_not(tmp_path: Path) -> None:
    ok = "vendor,visitor,arrived_at,purpose,,\nA,B,2024-05-01 09:30,repair,,\n,,,,,\n"
    assert len(parse_file(write(tmp_path, "ok.csv", ok), VendorVisit, tz=TAIPEI)) == 1
    bad = "vendor,visitor,arrived_at,purpose\nA,B,2024-05-01 09:30,repair,oops\n"
    (problem,) = fails(write(tmp_path, "bad.csv", bad)).problems
    assert problem.row == 2
    assert problem.message == "cell E2 = 'oops' has no column header"


class Rack(BaseModel):
    """A rack whose fields have aliases (as an export names them)."""

    rack_id: str = Field(alias="rackId", json_schema_extra={"zh": "機櫃編號"})
    height_u: int = Field(42, validation_alias="heightU")


def test_aliases_name_columns_and_problems_name_fields(tmp_path: Path) -> None:
    text = "機櫃編號 / rackId,height_u\nR01,42\nR02,\nR03,tall\n"
    with pytest.raises(ImportFailed) as caught:
        parse_file(write(tmp_path, "racks.csv", text), Rack, tz=TAIPEI)
    (problem,) = caught.value.problems
    assert (problem.row, problem.field, problem.value) == (4, "height_u", "tall")
    good = write(tmp_path, "good.csv", "RACKID,heightU\nR01,40\nR02,\n")
    assert [(r.rack_id, r.height_u) for r in parse_file(good, Rack, tz=TAIPEI)] == [("R01", 40), ("R02", 42)]


def test_a_model_whose_fields_share_a_header_is_refused(tmp_path: Path) -> None:
    class Clash(BaseModel):
        a: str = Field(json_schema_extra={"zh": "名稱"})
        b: str = Field(json_schema_extra={"zh": "名稱"})

    with pytest.raises(TypeError, match="header '名稱' would name both 'a' and 'b'"):
        parse_file(write(tmp_path, "x.csv", "a,b\n1,2\n"), Clash, tz=TAIPEI)


def test_an_empty_file_and_a_header_only_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="no header row"):
        parse_file(write(tmp_path, "empty.csv", ""), VendorVisit, tz=TAIPEI)
    assert parse_file(write(tmp_path, "header.csv", HEADER + "\n"), VendorVisit, tz=TAIPEI) == []


# --- rows -------------------------------------------------------------------------------------------------


def test_one_bad_row_among_good_ones_fails_the_whole_file(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[1].replace("delivery", "party"), ROWS[2]]
    path = write(tmp_path, "visits.csv", "\n".join([HEADER, *rows]))
    result: list[BaseModel] | None = None
    with pytest.raises(ImportFailed) as caught:
        result = parse_file(path, VendorVisit, tz=TAIPEI)
    assert result is None  # nothing returned
    failed = caught.value
    assert failed.problems == [
        RowProblem(3, "purpose", "party", "not one of the choices", ("delivery", "repair", "audit"))
    ]
    assert str(failed) == (
        f"{path}: 1 problem, nothing imported\n"
        f"{path}:row 3: field 'purpose' = 'party': not one of the choices (valid: delivery, repair, audit)"
    )


def test_every_problem_is_listed_with_spreadsheet_row_numbers(tmp_path: Path) -> None:
    rows = [
        ROWS[0],
        "",  # a blank row keeps its number, as in a spreadsheet
        ",王小明,,yesterday,,repair,mr9,maybe,,hot",
        "ACME,王小明,,2024-05-01 09:30,2024-05-01 08:00,Repair,,,,",
    ]
    path = write(tmp_path, "visits.csv", "\n".join([HEADER, *rows]))
    problems = fails(path).problems
    assert [(p.row, p.field, p.value) for p in problems] == [
        (4, "vendor", None),
        (4, "arrived_at", "yesterday"),
        (4, "area", "mr9"),
        (4, "escorted", "maybe"),
        (4, "temperature_c", "hot"),
        (5, None, None),
    ]
    by_field = {p.field: p for p in problems}
    assert by_field["vendor"].message == "required, but empty"
    assert by_field["arrived_at"].message.startswith("not a date and time; write YYYY-MM-DD HH:MM[:SS]")
    assert by_field["area"].valid == ("mr1", "mr2", "ups-room")
    assert by_field["escorted"].valid == ("true", "false", "yes", "no", "1", "0", "是", "否", "Y", "N")
    assert "valid number" in by_field["temperature_c"].message
    assert by_field[None].message == "left_at is before arrived_at"  # the model's cross-field rule
    text = str(fails(path))
    assert f"{path}:row 4: field 'vendor': required, but empty" in text
    assert f"{path}:row 4: field 'escorted' = 'maybe': not a yes/no value (valid: true, false," in text
    assert f"{path}:row 5: left_at is before arrived_at" in text


def test_the_listing_stops_at_fifty(tmp_path: Path) -> None:
    rows = [f"ACME,v{i},,2024-05-01 09:30,,fun,,,," for i in range(60)]
    failed = fails(write(tmp_path, "visits.csv", "\n".join([HEADER, *rows])))
    assert len(failed.problems) == 60
    lines = str(failed).splitlines()
    assert len(lines) == 1 + 50 + 1
    assert lines[50].startswith(f"{tmp_path / 'visits.csv'}:row 51: field 'purpose' = 'fun'")
    assert lines[-1] == "… and 10 more"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("是", True),
        ("否", False),
        ("Y", True),
        ("n", False),
        ("YES", True),
        ("no", False),
        ("1", True),
        ("0", False),
        ("True", True),
        ("false", False),
    ],
)
def test_booleans(tmp_path: Path, cell: str, expected: bool) -> None:
    text = f"vendor,visitor,arrived_at,purpose,escorted\nA,B,2024-05-01 09:30,repair,{cell}\n"
    (visit,) = parse_file(write(tmp_path, "visits.csv", text), VendorVisit, tz=TAIPEI)
    assert visit.escorted is expected


# --- date-times -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "2024-05-01 09:30",
        "2024-05-01 09:30:00",
        "2024/05/01 09:30",
        "2024/5/1 9:30:00",
        "2024-05-01T09:30",
        "2024/5/1 上午 09:30:00",
        "2024-05-01T01:30:00Z",
        "2024-05-01T09:30:00+08:00",
    ],
)
def test_a_naive_datetime_is_taipei_wall_clock(tmp_path: Path, cell: str) -> None:
    text = f"vendor,visitor,arrived_at,purpose\nA,B,{cell},repair\n"
    (visit,) = parse_file(write(tmp_path, "visits.csv", text), VendorVisit, tz=TAIPEI)
    assert visit.arrived_at == datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
    assert visit.arrived_at.utcoffset() in (timedelta(hours=8), timedelta(0))
    if "+" not in cell and "Z" not in cell:
        assert visit.arrived_at.tzinfo is TAIPEI


def test_afternoon_in_excel_zh_tw_format(tmp_path: Path) -> None:
    text = (
        "vendor,visitor,arrived_at,purpose\nA,B,2024/5/1 下午 02:05,repair\nA,B,2024/5/1 上午 12:05,repair\n"
    )
    afternoon, midnight = parse_file(write(tmp_path, "visits.csv", text), VendorVisit, tz=TAIPEI)
    assert afternoon.arrived_at == datetime(2024, 5, 1, 14, 5, tzinfo=TAIPEI)
    assert midnight.arrived_at == datetime(2024, 5, 1, 0, 5, tzinfo=TAIPEI)


def test_a_date_without_a_time_is_not_a_datetime(tmp_path: Path) -> None:
    text = "vendor,visitor,arrived_at,purpose\nA,B,2024-05-01,repair\n"
    (problem,) = fails(write(tmp_path, "visits.csv", text)).problems
    assert (problem.field, problem.value) == ("arrived_at", "2024-05-01")


def test_wall_clock_times_a_dst_change_skips_or_repeats_are_refused(tmp_path: Path) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    text = "vendor,visitor,arrived_at,purpose\nA,B,2024-03-31 02:30,repair\nA,B,2024-10-27 02:30,repair\n"
    with pytest.raises(ImportFailed) as caught:
        parse_file(write(tmp_path, "visits.csv", text), VendorVisit, tz=berlin)
    skipped, repeated = caught.value.problems
    assert skipped.message == "2024-03-31 02:30 does not exist in Europe/Berlin: the clocks skip it"
    assert repeated.message == (
        "2024-10-27 02:30 happens twice in Europe/Berlin (the clocks go back):"
        " write 2024-10-27T02:30+02:00 or 2024-10-27T02:30+01:00"
    )
    offset = "vendor,visitor,arrived_at,purpose\nA,B,2024-10-27T02:30+01:00,repair\n"
    (visit,) = parse_file(write(tmp_path, "ok.csv", offset), VendorVisit, tz=berlin)
    assert visit.arrived_at == datetime(2024, 10, 27, 1, 30, tzinfo=UTC)


# --- rows from another reader -----------------------------------------------------------------------------


def test_parse_value_rows() -> None:
    rows = [
        {
            "廠商": "中華電信",
            "訪客": "王小明",
            "到達時間": "2024-05-01 09:30",
            "目的": "repair",
            "機櫃": "R1;R2",
        },
        {"廠商": "台達電子", "訪客": "陳美玲", "到達時間": "2024/05/01 10:00", "目的": "audit"},
    ]
    first, second = parse_value_rows(rows, VendorVisit, "zkteco.xls", TAIPEI)
    assert first.racks == ["R1", "R2"]
    assert second.arrived_at == datetime(2024, 5, 1, 10, tzinfo=TAIPEI)
    assert parse_value_rows([], VendorVisit, "zkteco.xls", TAIPEI) == []
    rows[1]["目的"] = "lunch"
    with pytest.raises(ImportFailed) as caught:
        parse_value_rows(rows, VendorVisit, "zkteco.xls", TAIPEI, first_row=5)
    assert str(caught.value).splitlines()[1].startswith("zkteco.xls:row 6: field 'purpose' = 'lunch'")
    with pytest.raises(ImportFailed, match=r"zkteco\.xls:row 4: unknown column 'door'"):
        parse_value_rows([{**rows[0], "door": "1"}], VendorVisit, "zkteco.xls", TAIPEI, first_row=5)


# --- round trip -------------------------------------------------------------------------------------------

# ASCII, CSV's own specials and Chinese that Big5 has, so every example can be written as cp950 too.
_ALPHABET = "ABCXYZabcxyz0129 -_.,/\"'\n機房廠商維修測試臺北中華電信股份有限公司是否"
_text = st.text(_ALPHABET, min_size=1, max_size=16).map(str.strip).filter(bool)
_item = st.text(_ALPHABET.replace("\n", ""), min_size=1, max_size=8).map(str.strip).filter(bool)
_zones = st.sampled_from([TAIPEI, UTC, timezone(timedelta(hours=-5))])  # no DST: == compares instants
_instants = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=_zones)


@st.composite
def visits(draw: st.DrawFn) -> VendorVisit:
    """A valid VendorVisit (left_at, when set, is not before arrived_at)."""
    arrived = draw(_instants)
    stay = draw(st.none() | st.timedeltas(timedelta(0), timedelta(hours=12)))
    return VendorVisit(
        vendor=draw(_text),
        visitor=draw(_text),
        badge=draw(st.none() | _text),
        arrived_at=arrived,
        left_at=None if stay is None else arrived + stay,
        purpose=draw(st.sampled_from(Purpose)),
        area=draw(st.sampled_from(["mr1", "mr2", "ups-room"])),
        escorted=draw(st.booleans()),
        racks=draw(st.lists(_item, max_size=3)),
        temperature_c=draw(st.none() | st.floats(allow_nan=False, allow_infinity=False)),
    )


def to_csv(records: list[VendorVisit], headers: str) -> str:
    """CSV as a person's spreadsheet would hold it: zh, en or 'zh / en' headers, 是/否, local times."""
    names = list(VendorVisit.model_fields)
    zh = {name: str((VendorVisit.model_fields[name].json_schema_extra or {})["zh"]) for name in names}  # type: ignore[index]
    header = {"en": names, "zh": [zh[n] for n in names], "both": [f"{zh[n]} / {n}" for n in names]}[headers]

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "是" if value else "否"
        if isinstance(value, list):
            return ";".join(value)
        if isinstance(value, datetime):
            if value.tzinfo is TAIPEI and not value.microsecond:
                return value.strftime("%Y/%m/%d %H:%M:%S")  # naive: read as Taipei wall clock
            return value.isoformat()
        if isinstance(value, float):
            return repr(value)
        return str(value)

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for record in records:
        writer.writerow([cell(getattr(record, name)) for name in names])
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(visits(), max_size=6),
    st.sampled_from(["en", "zh", "both"]),
    st.sampled_from(["utf-8", "utf-8-sig", "cp950"]),
)
def test_valid_records_written_to_csv_round_trip(
    records: list[VendorVisit], headers: str, encoding: str
) -> None:
    data = to_csv(records, headers).encode(encoding)
    # A short Big5 text can also be valid UTF-8 (UTF-8 is tried first), so cp950 is named here;
    # detection itself is test_big5_file_imports_like_the_utf8_one.
    named = encoding if encoding == "cp950" else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "visits.csv"
        path.write_bytes(data)
        parsed = import_file(path, VendorVisit, tz=TAIPEI, encoding=named)
    assert parsed.records == records
    assert parsed.rows == len(records)
    assert parsed.encoding == ("utf-8-sig" if encoding == "utf-8-sig" else encoding)
