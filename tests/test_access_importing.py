"""compliance.access.importing: the generic access files and a ZKTeco PullSDK export, all or nothing."""

from __future__ import annotations

import codecs
import csv
import io
import json
import random
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compliance.access import importing
from compliance.access.importing import (
    ExportFailed,
    GrantRow,
    _generic_badges,
    parse_badges,
    parse_grants,
    parse_holders,
    parse_zkteco,
)
from compliance.access.model import ALWAYS, Badge, Grant, Holder, Schedule
from compliance.importing import ImportFailed, RecordImportError, UnreadableFile

TZ = ZoneInfo("Asia/Taipei")
DOORS = {1: ("機房前門", "mr1"), 2: ("機房後門", "mr2"), 3: ("UPS室", "ups")}
OFFICE_HOURS = Schedule.parse("mon-fri 08:00-18:00")


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


# --- ZKTeco ----------------------------------------------------------------------------------------------

# 2024-05-01 09:30:15, packed by hand: ((24 * 12 * 31 + 4 * 31 + 0) * 86400) + 9 * 3600 + 30 * 60 + 15
# = (8928 + 124) * 86400 + 34215 = 782092800 + 34215.
MAY_1_0930 = 782127015
# 2024-05-01 09:31:00 and 2024-05-02 18:05:00
MAY_1_0931 = MAY_1_0930 + 45
MAY_2_1805 = MAY_1_0930 + 86400 + 8 * 3600 + 34 * 60 + 45

USER = """CardNo,Pin,Password,Group,StartTime,EndTime,SuperAuthorize,Name
12345678,1,,1,20240101,20241231,0,王小明
87654321,2,,1,0,0,0,許功蓋
0,3,,1,0,0,0,陳美玲
"""
USERAUTHORIZE = """Pin,AuthorizeTimezoneId,AuthorizeDoorId
1,1,3
2,1,4
2,2,1
3,1,7
"""
TRANSACTION = f"""Cardno,Pin,Verified,DoorID,EventType,InOutState,Time_second
12345678,1,4,1,0,0,{MAY_1_0930}
12345678,1,4,2,23,1,{MAY_1_0931}
0,0,0,1,200,2,{MAY_1_0931}
0,3,1,3,14,2,{MAY_2_1805}
"""


def zk_export(folder: Path, encoding: str = "cp950", **tables: str) -> Path:
    """An export folder with the tables above (or those given), file names in mixed case."""
    folder.mkdir(exist_ok=True)
    texts = {"user": USER, "userauthorize": USERAUTHORIZE, "transaction": TRANSACTION, **tables}
    for name, stored in (
        ("user", "USER.csv"),
        ("userauthorize", "UserAuthorize.CSV"),
        ("transaction", "transaction.csv"),
    ):
        write(folder, stored, texts[name], encoding)
    return folder


def test_big5_zkteco_export_imports_names_grants_and_badges(tmp_path: Path) -> None:
    folder = zk_export(tmp_path / "zk")
    with pytest.raises(UnicodeDecodeError):
        (folder / "USER.csv").read_bytes().decode("utf-8")  # Big5 indeed: detection must get past UTF-8

    export = parse_zkteco(folder, TZ, doors=DOORS, timezones={2: OFFICE_HOURS})

    assert export.holders == (
        Holder("1", "王小明", "employee"),
        Holder("2", "許功蓋", "employee"),  # 許 is 0xB3 0x5C in Big5: a backslash as its second byte
        Holder("3", "陳美玲", "employee"),
    )
    epoch = datetime(2000, 1, 1, tzinfo=TZ)
    assert export.grants == (
        # mask 3 = doors 1 and 2; EndTime 20241231 is the last valid day
        GrantRow(
            Grant(
                "zk-1-12345678",
                "1",
                "12345678",
                ("mr1", "mr2"),
                at("2024-01-01T00:00"),
                at("2025-01-01T00:00"),
                ALWAYS,
            )
        ),
        # mask 4 = door 3, time zone 1 (24 hours); mask 1 = door 1 in time zone 2
        GrantRow(Grant("zk-2-87654321", "2", "87654321", ("ups",), epoch, None, ALWAYS)),
        GrantRow(Grant("zk-2-87654321-tz2", "2", "87654321", ("mr1",), epoch, None, OFFICE_HOURS)),
        # Pin 3 has no card: no grant
    )
    assert export.badges == (
        Badge(at("2024-05-01T09:30:15"), "機房前門", "mr1", "12345678", granted=True, direction="in"),
        Badge(at("2024-05-01T09:31:00"), "機房後門", "mr2", "12345678", granted=False, direction="out"),
        Badge(at("2024-05-02T18:05:00"), "UPS室", "ups", "pin:3", granted=True, direction="unknown"),
    )
    assert export.ignored == 1  # event 200, door opened correctly: not a badge event
    assert export.badges[0].at.utcoffset() is not None
    assert export.badges[0].at == datetime(2024, 5, 1, 1, 30, 15, tzinfo=ZoneInfo("UTC"))


def test_zkteco_time_second_edges(tmp_path: Path) -> None:
    # 0 is 2000-01-01 00:00:00; 31 * 86400 - 1 is the last second of January 2000 (every month has 31 days
    # in the packing, so 30 * 86400 is January 31st).
    head = TRANSACTION.splitlines()[0]
    rows = f"{head}\n1,,4,1,0,0,0\n1,,4,1,0,1,{31 * 86400 - 1}\n"
    export = parse_zkteco(zk_export(tmp_path / "zk", transaction=rows), TZ, timezones={2: OFFICE_HOURS})
    assert [b.at for b in export.badges] == [at("2000-01-01T00:00:00"), at("2000-01-31T23:59:59")]
    assert [b.door for b in export.badges] == ["door-1", "door-1"]  # no door map: door-n in mr1
    assert {b.zone for b in export.badges} == {"mr1"}


def test_zkteco_utf8_with_bom_and_explicit_files(tmp_path: Path) -> None:
    folder = zk_export(tmp_path / "zk", encoding="utf-8-sig")
    files = [folder / "USER.csv", folder / "UserAuthorize.CSV", folder / "transaction.csv"]
    by_list = parse_zkteco(files, TZ, doors=DOORS, timezones={2: OFFICE_HOURS})
    by_map = parse_zkteco(
        {"user": files[0], "userauthorize": files[1], "transaction": files[2]},
        TZ,
        doors=DOORS,
        timezones={2: OFFICE_HOURS},
    )
    assert by_list == by_map
    assert by_list.holders[0].name == "王小明"


def test_zkteco_bad_time_second_imports_nothing(tmp_path: Path) -> None:
    april_31 = (24 * 12 * 31 + 3 * 31 + 30) * 86400  # day index 30 of month index 3: 2024-04-31
    rows = TRANSACTION + f"12345678,1,4,1,0,0,{april_31}\n"
    with pytest.raises(ImportFailed) as caught:
        parse_zkteco(
            zk_export(tmp_path / "zk", transaction=rows), TZ, doors=DOORS, timezones={2: OFFICE_HOURS}
        )
    failure = caught.value
    assert failure.source.endswith("transaction.csv")
    [problem] = failure.problems
    assert (problem.row, problem.field, problem.value) == (6, "Time_second", str(april_31))
    assert "day 31 of 2024-04" in problem.message
    assert "transaction.csv:row 6: field 'Time_second'" in str(failure)


def test_zkteco_unknown_event_type_lists_the_known(tmp_path: Path) -> None:
    rows = TRANSACTION + f"12345678,1,4,1,77,0,{MAY_1_0930}\n"
    with pytest.raises(ImportFailed) as caught:
        parse_zkteco(
            zk_export(tmp_path / "zk", transaction=rows), TZ, doors=DOORS, timezones={2: OFFICE_HOURS}
        )
    [problem] = caught.value.problems
    assert (problem.row, problem.field, problem.value) == (6, "EventType", "77")
    assert "0-37, 101-103, 200-206, 220-221, 255" in problem.message


def test_zkteco_problems_in_two_files_are_all_reported(tmp_path: Path) -> None:
    users = USER + "555,4,,1,20241301,0,0,林大同\n"  # month 13
    rows = TRANSACTION + "1,1,4,1,0,0,soon\n"
    folder = zk_export(tmp_path / "zk", user=users, transaction=rows)
    with pytest.raises(ExportFailed) as caught:
        parse_zkteco(folder, TZ, doors=DOORS, timezones={2: OFFICE_HOURS})
    failure = caught.value
    assert isinstance(failure, ImportFailed)
    assert [f.source for f in failure.failures] == [str(folder / "USER.csv"), str(folder / "transaction.csv")]
    assert [(p.row, p.field, p.value) for p in failure.problems] == [
        (5, "StartTime", "20241301"),
        (6, "Time_second", "soon"),
    ]


def test_zkteco_rights_the_export_cannot_resolve_are_problems(tmp_path: Path) -> None:
    rights = USERAUTHORIZE + "9,1,1\n1,5,1\n1,1,8\n"  # unknown Pin; time zone 5; door 4 (mask 8) unmapped
    folder = zk_export(tmp_path / "zk", userauthorize=rights)
    with pytest.raises(ImportFailed) as caught:
        parse_zkteco(folder, TZ, doors=DOORS, timezones={2: OFFICE_HOURS})
    problems = caught.value.problems
    assert [(p.row, p.field, p.value) for p in problems] == [
        (6, "Pin", "9"),
        (7, "AuthorizeTimezoneId", "5"),
        (8, "AuthorizeDoorId", "8"),
    ]
    assert problems[1].valid == ("1", "2")
    assert problems[2].valid == ("1", "2", "3")
    # Without time zone 2's schedule the export's own row 4 is refused too.
    with pytest.raises(ImportFailed) as again:
        parse_zkteco(zk_export(tmp_path / "zk2"), TZ, doors=DOORS)
    assert [(p.row, p.field, p.value) for p in again.value.problems] == [(4, "AuthorizeTimezoneId", "2")]


def test_zkteco_export_needs_its_three_tables(tmp_path: Path) -> None:
    folder = zk_export(tmp_path / "zk")
    (folder / "transaction.csv").unlink()
    with pytest.raises(UnreadableFile, match=r"no transaction\.csv"):
        parse_zkteco(folder, TZ)


# --- the generic format ------------------------------------------------------------------------------------

HOLDERS_CSV = """人員編號,姓名,身分別,單位,離職日
E001,王小明,employee,資訊部,
V001,許功蓋,Vendor,大同保全,2024-06-30 18:00
"""
GRANTS_CSV = """grant_id / 授權編號,person_id,credential_id,credential_type,zones,schedule,valid_from,valid_to,requester,approver,implementer,ticket,work_order,justification
G1,E001,12345678,card,mr1;mr2,24x7,2024-01-01 00:00,,李主任,王經理,張工程師,T-1,,值班
G2,V001,87654321,card,mr1,mon-fri 08:00-18:00,2024-05-01T09:00+08:00,2024-05-31 18:00,王經理,陳協理,張工程師,T-2,WO-9,UPS 保養
"""  # noqa: E501
GRANTS_JSON = [
    {
        "授權編號": "G2",
        "人員編號": "V001",
        "憑證編號": "87654321",
        "區域": ["mr1"],
        "授權時段": "mon-fri 08:00-18:00",
        "生效時間": "2024-05-01T09:00+08:00",
        "失效時間": "2024-05-31 18:00",
        "申請人": "王經理",
        "核准人": "陳協理",
        "設定人": "張工程師",
        "申請單號": "T-2",
        "工單編號": "WO-9",
        "申請理由": "UPS 保養",
    },
    {
        "grant_id": "G1",
        "person_id": "E001",
        "credential_id": "12345678",
        "credential_type": "card",
        "zones": "mr2;mr1",
        "valid_from": "2024-01-01 00:00",
        "requester": "李主任",
        "approver": "王經理",
        "implementer": "張工程師",
        "ticket": "T-1",
        "justification": "值班",
    },
]
BADGES_CSV = """時間,門,區域,憑證編號,允許,方向
2024-05-02 09:05,機房前門,,87654321,是,in
2024-05-02 09:04:30,機房前門,mr1,12345678,yes,in

2024-05-02 19:00,機房後門,mr2,87654321,否,
"""

EXPECTED_GRANTS = [
    GrantRow(
        Grant(
            "G1",
            "E001",
            "12345678",
            ("mr1", "mr2"),
            at("2024-01-01T00:00"),
            None,
            ALWAYS,
            "李主任",
            "王經理",
            "張工程師",
            "T-1",
            "",
        ),
        "card",
        "值班",
    ),
    GrantRow(
        Grant(
            "G2",
            "V001",
            "87654321",
            ("mr1",),
            at("2024-05-01T09:00"),
            at("2024-05-31T18:00"),
            OFFICE_HOURS,
            "王經理",
            "陳協理",
            "張工程師",
            "T-2",
            "WO-9",
        ),
        "card",
        "UPS 保養",
    ),
]


def test_generic_csv_with_bom_and_json_give_the_same_grants(tmp_path: Path) -> None:
    csv_path = tmp_path / "grants.csv"
    csv_path.write_bytes(codecs.BOM_UTF8 + GRANTS_CSV.encode())
    json_path = write(tmp_path, "grants.json", json.dumps({"records": GRANTS_JSON}, ensure_ascii=False))
    assert parse_grants(csv_path, TZ) == EXPECTED_GRANTS
    assert parse_grants(json_path, TZ) == EXPECTED_GRANTS


def test_generic_holders_and_badges(tmp_path: Path) -> None:
    holders = tmp_path / "holders.csv"
    holders.write_bytes(codecs.BOM_UTF8 + HOLDERS_CSV.encode())
    assert parse_holders(holders, TZ) == [
        Holder("E001", "王小明", "employee", "資訊部"),
        Holder("V001", "許功蓋", "vendor", "大同保全", at("2024-06-30T18:00")),
    ]
    badges = write(tmp_path, "badges.csv", BADGES_CSV)
    assert parse_badges(badges, TZ, {"機房前門": "mr1"}) == [
        Badge(at("2024-05-02T09:04:30"), "機房前門", "mr1", "12345678", True, "in"),
        Badge(at("2024-05-02T09:05"), "機房前門", "mr1", "87654321", True, "in"),
        Badge(at("2024-05-02T19:00"), "機房後門", "mr2", "87654321", False, "unknown"),
    ]


def test_generic_bad_schedule_imports_nothing(tmp_path: Path) -> None:
    bad = GRANTS_CSV.replace("mon-fri 08:00-18:00", "weekdays 8am-6pm")
    with pytest.raises(ImportFailed) as caught:
        parse_grants(write(tmp_path, "grants.csv", bad), TZ)
    [problem] = caught.value.problems
    assert (problem.row, problem.field, problem.value) == (3, "schedule", "weekdays 8am-6pm")
    assert "'24x7'" in problem.message
    assert "mon-fri 08:00-18:00" in problem.message
    assert "grants.csv:row 3: field 'schedule' = 'weekdays 8am-6pm'" in str(caught.value)


def test_generic_repeated_key_and_missing_zone_name_their_rows(tmp_path: Path) -> None:
    twice = GRANTS_CSV + "\n" + GRANTS_CSV.splitlines()[1] + "\n"  # G1 again at row 5 (row 4 blank)
    with pytest.raises(ImportFailed) as caught:
        parse_grants(write(tmp_path, "grants.csv", twice), TZ)
    [problem] = caught.value.problems
    assert (problem.row, problem.field, problem.value) == (5, "grant_id", "G1")
    assert "first in row 2" in problem.message

    with pytest.raises(ImportFailed) as zone:
        parse_badges(write(tmp_path, "badges.csv", BADGES_CSV), TZ)  # no door map for the empty zone
    [problem] = zone.value.problems
    assert (problem.row, problem.field) == (2, "zone")
    assert "機房前門" in problem.message


def test_generic_valid_to_must_follow_valid_from(tmp_path: Path) -> None:
    bad = GRANTS_CSV.replace("2024-05-31 18:00", "2024-04-30 18:00")
    with pytest.raises(ImportFailed) as caught:
        parse_grants(write(tmp_path, "grants.csv", bad), TZ)
    [problem] = caught.value.problems
    assert (problem.row, problem.field, problem.value) == (3, "valid_to", "2024-04-30 18:00")


def test_parsing_is_deterministic(tmp_path: Path) -> None:
    first = parse_zkteco(zk_export(tmp_path / "a"), TZ, doors=DOORS, timezones={2: OFFICE_HOURS})
    assert parse_zkteco(tmp_path / "a", TZ, doors=DOORS, timezones={2: OFFICE_HOURS}) == first
    # The same rows in another order parse to the same (sorted) values.
    head, *rows = TRANSACTION.splitlines()
    shuffled = "\n".join([head, *reversed(rows)]) + "\n"
    users_head, *users = USER.splitlines()
    folder = zk_export(
        tmp_path / "b", transaction=shuffled, user="\n".join([users_head, *reversed(users)]) + "\n"
    )
    assert parse_zkteco(folder, TZ, doors=DOORS, timezones={2: OFFICE_HOURS}) == first

    grants = write(tmp_path, "grants.csv", GRANTS_CSV)
    assert parse_grants(grants, TZ) == parse_grants(grants, TZ)
    assert [g.grant.schedule.start for g in parse_grants(grants, TZ)] == [time(0), time(8)]


def test_generic_json_problems_count_records(tmp_path: Path) -> None:
    people = [{"person_id": "E001", "name": "王小明"}, {"人員編號": "E001", "姓名": "王大明"}]
    path = write(tmp_path, "holders.json", json.dumps(people, ensure_ascii=False))
    with pytest.raises(ImportFailed) as caught:
        parse_holders(path, TZ)
    assert caught.value.unit == "record"
    [problem] = caught.value.problems
    assert (problem.row, problem.field, problem.value) == (2, "person_id", "E001")
    assert "first in record 1" in problem.message


# --- badges.csv: the fast path against the generic one ----------------------------------------------------
#
# parse_badges reads a CSV without a pydantic model per row; `_generic_badges` is the model-per-row path
# (JSON's, and the reference): on any file both give the same badges (same zones of their times, same
# order) or the same failure, to the character.

DOOR_ZONES = {
    "機房前門": "mr1",
    "機房後門": "mr2",
    "許功蓋室": "ups",
    "門, 北側": "mr1",
    "籠\n7": "cage",
    "機房\u2028前門": "mr1",
}
AT_CELLS = (
    "2024-05-02 09:05",
    "2024-05-02 09:04:30",
    " 2024-05-02 09:04:30.250 ",
    "2024-05-02T09:04:30+08:00",
    "2024-05-02T01:04:30Z",  # the same instant as 09:04:30 in Taipei, in another zone: order is kept
    "2024-05-02t09:06",
    "2024/05/02 19:00",
    "2024/05/02 19:00:05",
    "2024/5/2 下午 7:05",
    "2024/5/2 上午 12:10",
    "2024-5-2 下午 12:00:01",
)
DOOR_CELLS = ("機房前門", " 機房後門 ", "許功蓋室", "門, 北側", "籠\n7")
ZONE_CELLS = ("", "", "mr1", " mr2 ", "cage")
CREDENTIAL_CELLS = ("12345678", "0012", " 87654321 ", "pin:3")
GRANTED_CELLS = ("", "是", "否", "yes", "No", "Y", "n", "TRUE", "0", "1")
DIRECTION_CELLS = ("", "in", "OUT", "Unknown", " out ", "in")
HEADERS = {
    "zh": ("時間", "門", "區域", "憑證編號", "允許", "方向"),
    "mixed": ("時間 / at", "Door", "ZONE", "Credential-ID", "granted", " direction "),
}

Outcome = tuple[str, object, object]


def outcome(parse: Callable[..., list[Badge]], path: Path, tz: tzinfo, **kw: object) -> Outcome:
    """The badges (with each time's zone and fold), or the failure's type, text and problems."""
    try:
        badges = parse(path, tz, DOOR_ZONES, **kw)
    except RecordImportError as exc:
        return type(exc).__name__, str(exc), getattr(exc, "problems", None)
    return "ok", [(b, b.at.tzinfo, b.at.fold) for b in badges], None


def agree(path: Path, tz: tzinfo = TZ, **kw: object) -> Outcome:
    """parse_badges' outcome, asserted equal to the generic path's."""
    fast = outcome(parse_badges, path, tz, **kw)
    assert fast == outcome(_generic_badges, path, tz, **kw)
    return fast


def varied_rows(seed: int, n: int) -> list[list[str]]:
    """`n` valid rows mixing every spelling the generic path reads, blank and short rows among them."""
    rnd = random.Random(seed)
    rows: list[list[str]] = []
    for _ in range(n):
        row = [rnd.choice(cells) for cells in (AT_CELLS, DOOR_CELLS, ZONE_CELLS)]
        row += [rnd.choice(cells) for cells in (CREDENTIAL_CELLS, GRANTED_CELLS, DIRECTION_CELLS)]
        roll = rnd.random()
        if roll < 0.03:
            row = [""] * 6 if roll < 0.015 else []  # blank rows: skipped, their numbers kept
        elif roll < 0.10:
            while row and not row[-1]:
                row.pop()  # a spreadsheet drops a row's empty trailing cells
        rows.append(row)
    return rows


def write_csv(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[str]], encoding: str, eol: str
) -> Path:
    buffer = io.StringIO(newline="")
    # Every cell quoted when lines end with CR alone: csv.writer then leaves a cell holding LF unquoted.
    if eol == "\r":
        writer = csv.writer(buffer, lineterminator=eol, quoting=csv.QUOTE_ALL)
    else:
        writer = csv.writer(buffer, lineterminator=eol)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize(
    ("seed", "headers", "encoding", "eol"),
    [
        (1, "zh", "utf-8", "\r\n"),
        (2, "zh", "utf-8-sig", "\n"),  # a byte-order mark
        (3, "zh", "cp950", "\r\n"),  # Big5 as Windows writes it: 許 and 功 end with byte 0x5C
        (4, "mixed", "cp950", "\r"),  # lines ended by CR alone, every cell quoted
        (5, "mixed", "utf-16", "\r\n"),
    ],
)
def test_fast_badges_agree_with_the_generic_path(
    tmp_path: Path, seed: int, headers: str, encoding: str, eol: str
) -> None:
    rows = varied_rows(seed, 600)
    path = write_csv(tmp_path / "badges.csv", HEADERS[headers], rows, encoding, eol)
    kind, badges, _ = agree(path)
    assert kind == "ok"
    assert isinstance(badges, list)
    assert len(badges) == sum(1 for r in rows if any(c.strip() for c in r))
    assert {b.granted for b, _, _ in badges} == {True, False}
    assert {b.direction for b, _, _ in badges} == {"in", "out", "unknown"}
    assert {str(tz) for _, tz, _ in badges} == {"Asia/Taipei", "UTC+08:00", "UTC"}
    assert agree(path, encoding=encoding)[0] == "ok"


def test_fast_badges_agree_on_odd_layouts(tmp_path: Path) -> None:
    rows = varied_rows(7, 300)
    # Columns shuffled, no zone column (every zone from the door map), an unnamed empty column.
    order = (3, 5, 0, 1, 4)
    shuffled = [[r[i] if i < len(r) else "" for i in order] + [""] for r in rows]
    header = ("credential_id", "方向", "at", "門", "允許", "")
    assert agree(write_csv(tmp_path / "a.csv", header, shuffled, "utf-8", "\r\n"))[0] == "ok"
    # A line break csv does not split on but str.splitlines would, inside a door's name.
    odd = [[*r[:1], "機房\u2028前門", *r[2:]] if len(r) > 2 and r[0] else r for r in rows]
    kind, badges, _ = agree(write_csv(tmp_path / "b.csv", HEADERS["zh"], odd, "utf-8", "\n"))
    assert kind == "ok"
    assert isinstance(badges, list)
    assert any(b.door == "機房\u2028前門" for b, _, _ in badges)
    # A zone with clock changes (Berlin: 2024-03-31 02:00 skipped, 2024-10-27 02:00-03:00 twice), and a
    # fixed-offset tzinfo.
    edges = ["2024-03-31 01:59:59", "2024-03-31 03:00", "2024-10-27 01:59", "2024-10-27 03:00:00"]
    berlin = write_csv(
        tmp_path / "c.csv", HEADERS["zh"], [[t, "機房前門", "", "1", "", ""] for t in edges], "utf-8", "\n"
    )
    assert agree(berlin, ZoneInfo("Europe/Berlin"))[0] == "ok"
    assert agree(berlin, timezone(timedelta(hours=8)))[0] == "ok"


def test_a_bad_badge_row_in_the_middle_imports_nothing_and_is_named(tmp_path: Path) -> None:
    rows = [r for r in varied_rows(11, 400) if r]
    bad = [list(r) + [""] * (6 - len(r)) for r in rows]
    bad[100][0] = "2024-13-01 09:00"  # row 102: no month 13
    bad[250][4] = "maybe"  # row 252
    bad[300][1:3] = ["後門", ""]  # row 302: a door the map does not know, and no zone
    kind, text, problems = agree(write_csv(tmp_path / "badges.csv", HEADERS["zh"], bad, "cp950", "\r\n"))
    assert kind == "ImportFailed"
    assert isinstance(text, str)
    assert isinstance(problems, list)
    # The rows' own problems first, as the generic path: the door's zone is checked once they are none.
    assert [(p.row, p.field, p.value) for p in problems] == [
        (102, "at", "2024-13-01 09:00"),
        (252, "granted", "maybe"),
    ]
    assert "badges.csv: 2 problems, nothing imported" in text
    assert "badges.csv:row 102: field 'at' = '2024-13-01 09:00': not a date and time; write" in text
    assert "badges.csv:row 252: field 'granted' = 'maybe': not a yes/no value (valid: true, false," in text

    bad[100][0], bad[250][4] = rows[100][0], "no"
    kind, text, problems = agree(write_csv(tmp_path / "badges.csv", HEADERS["zh"], bad, "cp950", "\r\n"))
    assert kind == "ImportFailed"
    assert isinstance(problems, list)
    assert [(p.row, p.field, p.value) for p in problems] == [(302, "zone", None)]
    assert "badges.csv:row 302: field 'zone': empty, and door '後門' has no zone in the door map" in str(text)


@pytest.mark.parametrize(
    "bad",
    [
        {0: "2024-05-02"},  # a date without its time
        {0: "soon"},
        {0: ""},  # required, but empty
        {0: "2024-03-31 02:30"},  # skipped in Berlin
        {0: "2024-10-27 02:30"},  # twice in Berlin
        {1: "   "},
        {3: ""},
        {4: "maybe"},
        {5: "sideways"},
        {6: "stray"},  # a cell beyond the header
    ],
)
def test_fast_badges_fail_as_the_generic_path(tmp_path: Path, bad: dict[int, str]) -> None:
    rows = [r + [""] * (6 - len(r)) for r in varied_rows(3, 60) if r]
    for i, value in bad.items():
        rows[30] += [""] * (i + 1 - len(rows[30]))
        rows[30][i] = value
    path = write_csv(tmp_path / "badges.csv", HEADERS["mixed"], rows, "utf-8", "\r\n")
    for tz in (TZ, ZoneInfo("Europe/Berlin")):
        kind, text, problems = agree(path, tz)
        if kind == "ok":  # a time only Berlin's clock changes refuse
            assert tz == TZ
            assert bad in ({0: "2024-03-31 02:30"}, {0: "2024-10-27 02:30"})
        else:
            assert isinstance(problems, list)
            assert problems[0].row == 32, text


def test_fast_badges_refuse_the_file_as_the_generic_path(tmp_path: Path) -> None:
    good = [["2024-05-02 09:05", "機房前門", "", "1", "", ""]]
    cases = {
        "unknown.csv": (("when", "門", "區域", "憑證編號", "允許", "方向"), good),
        "missing.csv": (("時間", "區域", "憑證編號"), [["2024-05-02 09:05", "", "1"]]),
        "twice.csv": (("時間", "at", "門", "憑證編號"), [["2024-05-02 09:05", "", "機房前門", "1"]]),
        "noheader.csv": ((",,",), good),
        "stray.csv": (("時間", "門", "", "憑證編號"), [["2024-05-02 09:05", "機房前門", "x", "1"]]),
        # a CSV error after a bad header: the generic path reads the whole file first
        "huge.csv": (("when", "門"), [["x" * 200_000, "1"]]),
    }
    for name, (header, rows) in cases.items():
        kind, text, _ = agree(write_csv(tmp_path / name, header, rows, "utf-8", "\r\n"))
        assert kind in ("ImportFailed", "UnreadableFile"), (name, text)
    assert agree(write(tmp_path, "empty.csv", ""))[0] == "UnreadableFile"
    assert agree(write(tmp_path, "zip.csv", "PK\x03\x04"))[0] == "UnreadableFile"
    latin = write(
        tmp_path, "latin.csv", "at,door,zone,credential_id\n2024-05-02 09:05,café,mr1,1\n", "latin-1"
    )
    assert agree(latin)[0] == "UnreadableFile"  # neither UTF-8 nor Big5
    assert agree(latin, encoding="latin-1")[0] == "ok"
    assert "not CSV: field larger than field limit" in str(agree(tmp_path / "huge.csv")[1])


def test_badges_json_reads_as_before(tmp_path: Path) -> None:
    records = [
        {"時間": "2024-05-02 09:05", "門": "機房前門", "憑證編號": "87654321", "允許": "是"},
        {"at": "2024-05-02T09:04:30+08:00", "door": "機房後門", "zone": "mr2", "credential_id": "1"},
    ]
    path = write(tmp_path, "badges.json", json.dumps(records, ensure_ascii=False))
    kind, badges, _ = agree(path)
    assert kind == "ok"
    assert isinstance(badges, list)
    assert len(badges) == 2


def test_rows_left_to_the_generic_path_keep_their_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path refuses only what the generic path refuses too; should it refuse more, those rows
    # still come back in their place (same badges, same order of equal times written in other zones).
    path = write_csv(tmp_path / "badges.csv", HEADERS["zh"], varied_rows(13, 300), "utf-8", "\r\n")
    expected = agree(path)
    reader = importing._datetime_reader

    def every_third(tz: tzinfo) -> Callable[[str], datetime]:
        read, calls = reader(tz), [0]

        def refusing(cell: str) -> datetime:
            calls[0] += 1
            if calls[0] % 3 == 0:
                raise importing._Refused("left to the generic path")
            return read(cell)

        return refusing

    monkeypatch.setattr(importing, "_datetime_reader", every_third)
    assert outcome(parse_badges, path, TZ) == expected
    assert expected[0] == "ok"
