"""records.audit.append_many: a batch chains exactly as `append` once per entry, with one head update."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from records.audit import (
    GENESIS,
    Actor,
    AuditEntry,
    AuditHead,
    AuditItem,
    append,
    append_many,
    iter_entries,
    verify,
)
from records.db import make_engine, session_factory
from records.migrate import upgrade

ACTOR = Actor("王小明", "cli:host/wang")
AT = datetime(2026, 10, 5, 1, 30, 15, 250_000, tzinfo=UTC)
ITEMS = [
    AuditItem("create", "access.holder", "E001", after={"name": "王小明", "org_unit": "資訊部"}),
    AuditItem(
        "update",
        "access.grant",
        "G1",
        before={"zones": ["mr1"]},
        after={"zones": ["mr1", "mr2"], "valid_to": None},
    ),
    AuditItem("void", "access.grant", "G2", before={"n": 1.5, "ok": True}, note="重複申請"),
    AuditItem("import", "access.badges", "badges.csv", after={"rows": 1_000_000}, note=""),
]

Row = tuple[int, datetime, str, str, str, str, str, object, object, str | None, str, str]


def sessions(tmp_path: Path, name: str) -> sessionmaker[Session]:
    engine = make_engine(tmp_path / f"{name}.db")
    upgrade(engine)
    return session_factory(engine)


def rows(db: sessionmaker[Session]) -> list[Row]:
    with db() as s:
        return [
            (
                e.seq,
                e.at,
                e.actor,
                e.source,
                e.action,
                e.entity,
                e.entity_id,
                e.before,
                e.after,
                e.note,
                e.prev_hash,
                e.hash,
            )
            for e in iter_entries(s)
        ]


def head(db: sessionmaker[Session]) -> tuple[int, str] | None:
    with db() as s:
        h = s.get(AuditHead, 1)
        return None if h is None else (h.seq, h.hash)


def one_by_one(s: Session, items: Sequence[AuditItem], at: datetime) -> None:
    for item in items:
        append(
            s,
            ACTOR,
            item.action,
            item.entity,
            item.entity_id,
            before=item.before,
            after=item.after,
            note=item.note,
            at=at,
        )


def test_a_batch_chains_exactly_as_one_append_per_entry(tmp_path: Path) -> None:
    singles, batch = sessions(tmp_path, "singles"), sessions(tmp_path, "batch")
    earlier = AT - timedelta(days=1)
    for db in (singles, batch):  # both chains start from an existing head
        with db.begin() as s:
            append(s, Actor("system", "process:compliance"), "create", "compliance.roster", "R1", at=earlier)
    with singles.begin() as s:
        one_by_one(s, ITEMS, AT)
    with batch.begin() as s:
        added = append_many(s, ACTOR, ITEMS, at=AT)
        assert [e.seq for e in added] == [2, 3, 4, 5]

    assert rows(batch) == rows(singles)
    assert head(batch) == head(singles) == (5, rows(batch)[-1][-1])
    chain = rows(batch)
    assert [r[-2] for r in chain[1:]] == [r[-1] for r in chain[:-1]]  # each prev_hash is the one before


def test_a_first_batch_starts_the_chain_and_verifies(tmp_path: Path) -> None:
    db = sessions(tmp_path, "records")
    with db.begin() as s:
        append_many(s, ACTOR, ITEMS, at=AT)
    with db() as s:
        report = verify(s)
    assert report.ok, report.problems
    assert (report.entries, report.head_seq) == (len(ITEMS), len(ITEMS))
    assert rows(db)[0][-2] == GENESIS


def test_a_batch_reads_and_updates_the_head_once_and_flushes_once(tmp_path: Path) -> None:
    db = sessions(tmp_path, "records")
    with db.begin() as s:
        append(s, ACTOR, "create", "access.holder", "E000", at=AT)
    statements: list[str] = []
    flushes: list[int] = []
    with db.begin() as s:
        event.listen(s, "after_flush", lambda *_: flushes.append(1))
        engine = s.get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731 (conn, cursor, statement, ...)
        event.listen(engine, "before_cursor_execute", listener)
        try:
            append_many(s, ACTOR, ITEMS * 50, at=AT)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    assert len(flushes) == 1
    assert sum("FROM audit_head" in q for q in statements) == 1
    assert sum(q.lstrip().startswith("UPDATE audit_head") for q in statements) == 1
    assert head(db) == (1 + len(ITEMS) * 50, rows(db)[-1][-1])


def test_an_empty_batch_does_nothing(tmp_path: Path) -> None:
    db = sessions(tmp_path, "records")
    with db.begin() as s:
        assert append_many(s, ACTOR, [], at=AT) == []
        assert not s.new
        assert not s.dirty
    assert head(db) is None
    assert rows(db) == []

    with db.begin() as s:
        append(s, ACTOR, "create", "access.holder", "E001", at=AT)
    before = head(db), rows(db)
    with db.begin() as s:
        assert append_many(s, ACTOR, ()) == []
    assert (head(db), rows(db)) == before


def test_a_batch_then_single_appends_chain_on(tmp_path: Path) -> None:
    mixed, singles = sessions(tmp_path, "mixed"), sessions(tmp_path, "singles")
    later = AT + timedelta(minutes=5)
    with mixed.begin() as s:
        append_many(s, ACTOR, ITEMS[:2], at=AT)
        append(s, ACTOR, "decide", "access.review", "2026Q4#G1", after={"decision": "keep"}, at=later)
    with mixed.begin() as s:  # a later transaction: the head was committed with the batch
        append_many(s, ACTOR, ITEMS[2:], at=later)
    with singles.begin() as s:
        one_by_one(s, ITEMS[:2], AT)
        append(s, ACTOR, "decide", "access.review", "2026Q4#G1", after={"decision": "keep"}, at=later)
    with singles.begin() as s:
        one_by_one(s, ITEMS[2:], later)

    assert rows(mixed) == rows(singles)
    with mixed() as s:
        report = verify(s)
        assert report.ok, report.problems
        assert report.head_seq == len(ITEMS) + 1
        assert s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all() == list(range(1, 6))


def test_a_batch_is_all_or_nothing_with_its_transaction(tmp_path: Path) -> None:
    db = sessions(tmp_path, "records")

    def failing_write() -> None:
        with db.begin() as s:
            append_many(s, ACTOR, ITEMS, at=AT)
            raise RuntimeError("the write it describes failed")

    with pytest.raises(RuntimeError):
        failing_write()
    assert head(db) is None
    assert rows(db) == []
