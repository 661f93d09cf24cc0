"""The access store's imports of holders and grants: created, updated, unchanged, each change audited in
one transaction with the change, a key given twice judged as if one by one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from compliance.access.model import Badge, Grant, Holder
from compliance.access.store import AccessGrantRow, AccessStore, PutCounts
from records.audit import Actor, AuditEntry, verify
from records.db import make_engine, session_factory
from records.migrate import upgrade

TZ = ZoneInfo("Asia/Taipei")
WHO = Actor("hr-import", "test")
NOW = datetime(2026, 12, 1, 9, tzinfo=TZ)


@pytest.fixture
def store(tmp_path: Path) -> AccessStore:
    engine = make_engine(tmp_path / "records.db")
    upgrade(engine)
    return AccessStore(session_factory(engine))


def test_holders_created_updated_and_unchanged_each_audited(store: AccessStore) -> None:
    alice, bob = Holder("E001", "王小明"), Holder("E002", "林美華")
    assert store.put_holders([alice, bob], WHO, NOW) == PutCounts(created=2)
    left = replace(bob, left_at=NOW)
    assert store.put_holders([alice, left], WHO, NOW) == PutCounts(updated=1, unchanged=1)
    # The same key twice in one import: the second is judged against the first.
    assert store.put_holders(
        [Holder("E003", "陳"), Holder("E003", "陳"), Holder("E003", "陳志強")], WHO, NOW
    ) == (PutCounts(created=1, updated=1, unchanged=1))
    assert store.holders() == {"E001": alice, "E002": left, "E003": Holder("E003", "陳志強")}
    with store.sessions() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [(e.action, e.entity_id) for e in entries] == [
            ("create", "E001"),
            ("create", "E002"),
            ("update", "E002"),
            ("create", "E003"),
            ("update", "E003"),
        ]
        assert entries[2].before["left_at"] is None
        assert entries[2].after["left_at"] == NOW.isoformat()
        assert verify(s).ok


def test_a_grant_moved_to_another_card_updates_its_columns(store: AccessStore) -> None:
    g = Grant("G1", "E001", "C1", ("mr1",), NOW)
    store.put_grants([g, Grant("G2", "E002", "C2", ("mr1",), NOW)], WHO, NOW)
    assert store.put_grants([replace(g, credential_id="C9")], WHO, NOW) == PutCounts(updated=1)
    assert [x.credential_id for x in store.grants()] == ["C9", "C2"]
    with store.sessions() as s:
        assert s.get(AccessGrantRow, "G1").credential_id == "C9"  # type: ignore[union-attr]


def test_badges_read_back_in_utc_by_time_within_the_bounds(store: AccessStore) -> None:
    t = [NOW + timedelta(minutes=m, microseconds=m) for m in (3, 1, 2, 0)]
    badges = [
        Badge(t[0], "D1", "mr1", "C1"),
        Badge(t[1], "D2", "ups", "C2", granted=False),
        Badge(t[2], "D1", "mr1", "C1", direction="out"),
        Badge(t[3], "D1", "mr1", "C3", direction="unknown"),
    ]
    assert store.add_badges(badges, WHO, NOW, "panel.csv#1") == 4
    got = store.badges(since=t[1], until=t[0])
    assert got == [badges[1], badges[2]]  # [since, until), by time
    assert all(b.at.tzinfo is UTC for b in got)
    assert [b.at for b in store.badges()] == sorted(t)
