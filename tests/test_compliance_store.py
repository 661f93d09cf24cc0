"""The compliance store and its hash-chained audit log on a real SQLite file: every record write is
audited once, an identical write is not, `verify` names an entry edited, deleted or cut off directly in
the database, and a record still open overlaps every later period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from compliance.kinds import Drill, DutyShift
from compliance.store import Records
from records.audit import Actor, AuditReport, verify
from records.db import make_engine, session_factory
from records.migrate import upgrade

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
WHO = Actor("王小明", "cli:edge-1/wang")


@pytest.fixture
def db(tmp_path: Path) -> Records:
    engine = make_engine(tmp_path / "records.db")
    upgrade(engine)
    return Records(session_factory(engine))


def shift(i: int, operator: str = "陳大文") -> DutyShift:
    start = T0 + timedelta(hours=8 * i)
    return DutyShift(operator=operator, starts_at=start, ends_at=start + timedelta(hours=8))


def chain(db: Records, n: int = 5) -> None:
    for i in range(n):
        db.put_all([shift(i)], WHO, T0 + timedelta(minutes=i))


def report(db: Records) -> AuditReport:
    with db.sessions() as s:
        return verify(s)


def test_writes_are_audited_once_and_the_chain_verifies(db: Records) -> None:
    chain(db)
    assert [r.outcome for r in db.put_all([shift(0), shift(1)], WHO, T0)] == ["unchanged", "unchanged"]
    assert [r.outcome for r in db.put_all([shift(0, "林小華")], WHO, T0)] == ["updated"]
    rep = report(db)
    assert rep.ok
    assert rep.entries == 6
    assert rep.head_seq == 6
    with db.sessions() as s:
        before, after = s.execute(text("SELECT before, after FROM audit_log WHERE seq = 6")).one()
    assert "陳大文" in before
    assert "林小華" in after


def test_an_entry_edited_in_sqlite_is_named(db: Records) -> None:
    chain(db)
    with db.sessions.begin() as s:
        s.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 3"))
    rep = report(db)
    assert not rep.ok
    assert [(p.seq, p.kind) for p in rep.problems] == [(3, "edited")]
    assert "entry 3" in rep.problems[0].message


def test_a_deleted_entry_is_named(db: Records) -> None:
    chain(db)
    with db.sessions.begin() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    rep = report(db)
    assert [(p.seq, p.kind) for p in rep.problems] == [(2, "deleted")]


def test_deleting_the_newest_entries_is_detected_by_the_head(db: Records) -> None:
    chain(db)
    with db.sessions.begin() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    rep = report(db)
    assert [(p.seq, p.kind) for p in rep.problems] == [(4, "deleted")]
    assert "4..5" in rep.problems[0].message


def test_a_void_keeps_the_record_and_is_audited(db: Records) -> None:
    drill = Drill(drill_id="D-1", held_at=T0, plan="機房復原計畫", scenario="市電中斷", result="pass")
    db.put_all([drill], WHO, T0)
    db.void("drill", "D-1", WHO, "entered twice", T0)
    assert db.get(Drill, "D-1") is None
    rep = report(db)
    assert rep.ok
    assert rep.entries == 2


def test_an_open_record_overlaps_every_later_period(db: Records) -> None:
    from compliance.kinds import Incident

    incident = Incident(
        incident_id="INC-9",
        summary="市電中斷 / utility outage",
        started_at=T0,
        due_at=T0 + timedelta(days=14),
    )
    db.put_all([incident, shift(0)], WHO, T0)
    later = T0 + timedelta(days=30)
    assert [i.incident_id for i in db.of_kind(Incident, since=later)] == ["INC-9"]  # still open
    assert db.of_kind(DutyShift, since=later) == []  # ended long before
