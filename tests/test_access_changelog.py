"""Sheet E from the audit trail: what counts as an ACS change of the quarter, its kind, and whether an
approved ticket covers it; through the real store and the export."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from compliance.access.changelog import change_log
from compliance.access.model import FlagRules, Grant, Holder, Schedule
from compliance.access.review import Quarter
from compliance.access.service import export_review, start_review
from compliance.access.store import AccessStore
from records.audit import Actor
from records.db import make_engine, session_factory
from records.migrate import upgrade

TZ = ZoneInfo("Asia/Taipei")
Q4 = Quarter.parse("2026Q4", TZ)
WHO = Actor("import", "test")


def at(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TZ)


def grant(gid: str, **kw: object) -> Grant:
    base: dict[str, object] = {
        "zones": ("mr1",),
        "valid_from": at(11, 2),
        "requester": "李組長",
        "approver": "黃經理",
        "implementer": "門禁管理員",
        "ticket": f"T-{gid}",
    }
    base.update(kw)
    return Grant(gid, "E001", f"CARD-{gid}", **base)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> AccessStore:
    engine = make_engine(tmp_path / "records.db")
    upgrade(engine)
    s = AccessStore(session_factory(engine))
    s.put_holders([Holder("E001", "王小明")], WHO, at(9, 1))
    return s


def test_new_changed_revoked_and_rescheduled_grants(store: AccessStore) -> None:
    old = grant("G-OLD", valid_from=at(1, 5))  # granted before the quarter: not a change of it
    store.put_grants(
        [old, grant("G-NEW"), grant("G-SELF", approver="門禁管理員"), grant("G-NOTICKET", ticket="")],
        WHO,
        at(11, 2),
    )
    store.put_grants([replace(old, schedule=Schedule.parse("mon-fri 08:00-18:00"))], WHO, at(11, 10))
    store.put_grants(
        [replace(old, valid_to=at(12, 1), schedule=Schedule.parse("mon-fri 08:00-18:00"))], WHO, at(12, 3)
    )
    store.put_grants([replace(grant("G-NEW"), zones=("mr1", "ups"))], WHO, at(12, 5))
    store.put_grants(
        [replace(grant("G-NEW"), zones=("mr1", "ups"))], WHO, at(12, 6)
    )  # the same again: no change
    rows = change_log(store.grant_changes(), Q4.start, Q4.end, TZ)
    assert [(r.event_at, r.action, r.credential_id, r.matched) for r in rows] == [
        (at(11, 2), "grant", "CARD-G-NEW", True),
        (at(11, 2), "grant", "CARD-G-SELF", False),  # its approver implemented it
        (at(11, 2), "grant", "CARD-G-NOTICKET", False),
        (at(11, 10), "schedule change", "CARD-G-OLD", True),
        (at(12, 1), "revoke", "CARD-G-OLD", True),  # at the end date it was given, before it was recorded
        (at(12, 5), "modify", "CARD-G-NEW", True),
    ]
    revoke = rows[4]
    assert revoke.before == "mr1 | mon-fri 08:00-18:00 | 2026-01-05 10:00..—"
    assert revoke.after == "mr1 | mon-fri 08:00-18:00 | 2026-01-05 10:00..2026-12-01 10:00"
    assert (revoke.operator, revoke.holder_id, revoke.zone, revoke.ticket) == (
        "門禁管理員",
        "E001",
        "mr1",
        "T-G-OLD",
    )
    # The next quarter has none of them.
    q1 = Quarter.parse("2027Q1", TZ)
    assert change_log(store.grant_changes(), q1.start, q1.end, TZ) == []


def test_the_export_carries_the_change_log_and_its_unmatched_changes(
    store: AccessStore, tmp_path: Path
) -> None:
    store.put_grants([grant("G-NEW"), grant("G-NOTICKET", ticket="")], WHO, at(11, 2))
    review = start_review(store, "tpe-hq", "2026Q4", "m", WHO, at(12, 31), TZ, FlagRules())
    export_review(store, review.review_id, tmp_path / "out", site_name="HQ", company="Co", tz=TZ)
    book = load_workbook(next((tmp_path / "out").glob("*.xlsx")), read_only=True)
    sheet_e = list(book[book.sheetnames[4]].iter_rows(values_only=True))
    body = [r for r in sheet_e if isinstance(r[0], int)]
    assert [(r[3], r[-1]) for r in body] == [("grant", "Y"), ("grant", "N")]
    sheet_d = "\n".join(str(c) for r in book[book.sheetnames[3]].iter_rows(values_only=True) for c in r if c)
    assert "E-2" in sheet_d  # the unmatched change is an exception
    assert "E-1" not in sheet_d
