"""A small, realistic access dataset for the demo: `python -m compliance.access.demo OUT_DIR`.

Writes holders.csv, grants.csv and badges.csv (the generic format, docs/access-import.md; UTF-8 with
BOM) for a machine room of a few dozen people, dated relative to now so that every flag shows whenever
the demo runs: a dormant card, a leaver, an expired contractor still badging, a vendor without a work
order, a grant without approval, a self-approved one, a shared card, after-hours use and a vendor let
in alone.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝洪郭邱曾廖賴徐"
GIVEN = ["志明", "淑芬", "建宏", "美玲", "俊傑", "雅婷", "家豪", "怡君", "宗翰", "佩珊", "冠宇", "欣怡"]
DOOR, REAR, ZONE = "機房正門 main door", "機房後門 rear door", "mr1"


def _name(i: int) -> str:
    return SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 7) % len(GIVEN)]


def write_demo_dataset(folder: Path, now: datetime, tz: ZoneInfo, seed: int = 16000) -> list[Path]:
    """The three files in `folder`; the same `now` and seed give the same files."""
    rng = random.Random(seed)
    today = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    holders: list[dict[str, str]] = []
    grants: list[dict[str, str]] = []
    badges: list[tuple[datetime, str, str, str]] = []

    def day(n: int) -> datetime:
        return today - timedelta(days=n)

    def fmt(at: datetime | None) -> str:
        return "" if at is None else at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    def person(pid: str, name: str, kind: str, unit: str, left: datetime | None = None) -> None:
        holders.append(
            {"person_id": pid, "name": name, "holder_type": kind, "org_unit": unit, "left_at": fmt(left)}
        )

    def grant(gid: str, pid: str, card: str, since: datetime, **kw: str) -> None:
        row = {
            "grant_id": gid,
            "person_id": pid,
            "credential_id": card,
            "credential_type": "card",
            "zones": ZONE,
            "schedule": "24x7",
            "valid_from": fmt(since),
            "valid_to": "",
            "requester": "李組長",
            "approver": "黃經理",
            "implementer": "門禁管理員 吳",
            "ticket": f"REQ-{gid}",
            "work_order": "",
            "justification": "機房維運 operations",
        }
        row.update(kw)
        grants.append(row)

    def workdays(card: str, first: int, last: int, door: str = DOOR) -> None:
        for n in range(first, last - 1, -1):
            d = day(n)
            if d.weekday() < 5 and rng.random() < 0.6:
                badges.append((d + timedelta(hours=8, minutes=rng.randrange(0, 90)), door, ZONE, card))

    # 26 staff of the IT department who use the room on workdays.
    for i in range(1, 27):
        pid, card = f"E{i:03d}", f"0000{41000 + i}"
        person(pid, _name(i), "employee", "資訊部 IT")
        grant(f"G-{pid}", pid, card, day(400))
        workdays(card, 85, 1)
    # Contractors.
    person("C001", _name(40), "contractor", "系統整合商 SI")
    grant("G-C001", "C001", "000042001", day(120), valid_to=fmt(day(-60)))
    workdays("000042001", 60, 2)
    person("C002", _name(41), "contractor", "系統整合商 SI")
    grant("G-C002", "C002", "000042002", day(150), valid_to=fmt(day(20)))  # expired 20 days ago …
    workdays("000042002", 100, 21)
    badges.append((day(5) + timedelta(hours=14), DOOR, ZONE, "000042002"))  # … and still badged in
    # DORMANT_90D: granted over a year ago, last in 120 days ago.
    person("E027", _name(27), "employee", "稽核室 Audit")
    grant("G-E027", "E027", "000041027", day(400))
    badges.append((day(120) + timedelta(hours=10), DOOR, ZONE, "000041027"))
    # LEAVER_ACTIVE: left 10 days ago, card never revoked.
    person("E028", _name(28), "employee", "資訊部 IT", left=day(10) + timedelta(hours=18))
    grant("G-E028", "E028", "000041028", day(400))
    workdays("000041028", 80, 11)
    # NO_APPROVAL and SELF_APPROVED.
    person("E029", _name(29), "employee", "網路組 Network")
    grant("G-E029", "E029", "000041029", day(60), approver="")
    workdays("000041029", 55, 1)
    person("E030", _name(30), "employee", "網路組 Network")
    grant("G-E030", "E030", "000041030", day(60), requester="黃經理")
    workdays("000041030", 55, 1)
    # SHARED_CARD: one card issued to two night-shift operators.
    for pid, n in (("E031", 31), ("E032", 32)):
        person(pid, _name(n), "employee", "值班 Operations")
        grant(f"G-{pid}", pid, "000041031", day(200))
    workdays("000041031", 40, 1)
    badges.append((day(3) + timedelta(hours=21), DOOR, ZONE, "000041031"))
    badges.append((day(3) + timedelta(hours=21, seconds=20), REAR, ZONE, "000041031"))  # two doors, 20 s
    # AFTER_HOURS: office hours only, came in on a Saturday night.
    person("E033", _name(33), "employee", "資料庫組 DBA")
    grant("G-E033", "E033", "000041033", day(300), schedule="mon-fri 08:00-18:00")
    workdays("000041033", 60, 1)
    saturday = day((today.weekday() - 5) % 7 or 7)
    badges.append((saturday + timedelta(hours=22, minutes=15), DOOR, ZONE, "000041033"))
    # Vendors: UPS maintenance (escorted once, alone once) and a CRAC technician without a work order.
    person("V001", "陳志強", "vendor", "大同機電 Tatung M&E")
    grant(
        "G-V001",
        "V001",
        "000043001",
        day(30),
        valid_to=fmt(day(-30)),
        work_order="WO-2026-118",
        schedule="mon-fri 08:00-18:00",
    )
    visit = day(14) + timedelta(hours=10)
    badges.append((visit, DOOR, ZONE, "000043001"))
    badges.append((visit + timedelta(seconds=40), DOOR, ZONE, "000041001"))  # escorted by E001
    alone = day(7) + timedelta(hours=15)
    badges.append((alone, REAR, ZONE, "000043001"))  # nobody else at the rear door
    person("V002", "張建國", "vendor", "冷氣工程 HVAC Co.")
    grant("G-V002", "V002", "000043002", day(20), valid_to=fmt(day(-10)))
    badges.append((day(6) + timedelta(hours=9), DOOR, ZONE, "000043002"))
    badges.append((day(6) + timedelta(hours=9, seconds=30), DOOR, ZONE, "000041002"))

    folder.mkdir(parents=True, exist_ok=True)
    out = [folder / "holders.csv", folder / "grants.csv", folder / "badges.csv"]
    _write(out[0], ["person_id", "name", "holder_type", "org_unit", "left_at"], holders)
    _write(out[1], list(grants[0]), grants)
    rows = [
        {"at": fmt(a), "door": d, "zone": z, "credential_id": c, "granted": "yes", "direction": "in"}
        for a, d, z, c in sorted(set(badges))
        if a <= now
    ]
    _write(out[2], ["at", "door", "zone", "credential_id", "granted", "direction"], rows)
    return out


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    """Write the dataset into the folder given (default: var/demo/access), for Asia/Taipei, now."""
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("var/demo/access")
    for p in write_demo_dataset(folder, datetime.now(UTC), ZoneInfo("Asia/Taipei")):
        print(p)


if __name__ == "__main__":
    main()
