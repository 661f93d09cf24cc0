"""compliance.access.importing: the generic access files and a ZKTeco PullSDK export, all or nothing."""

from __future__ import annotations

import codecs
import json
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compliance.access.importing import (
    ExportFailed,
    GrantRow,
    parse_badges,
    parse_grants,
    parse_holders,
    parse_zkteco,
)
from compliance.access.model import ALWAYS, Badge, Grant, Holder, Schedule
from compliance.importing import ImportFailed, UnreadableFile

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
