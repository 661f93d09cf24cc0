"""The append-only, hash-chained audit log every write to records goes into (who, when, from where,
before/after).

Each entry carries the SHA-256 of its own content and of the entry before it (`prev_hash`), numbered
without gaps from 1; a one-row head keeps the newest number and hash. `verify` recomputes the chain and
names every entry that was edited (its hash no longer matches its content), deleted (a gap in the
numbers, or entries missing after the head) or re-linked. The chain proves integrity against edits made
directly in the database, not against someone who rewrites every later entry too: the evidence pack
therefore prints the head hash, so a later rewrite no longer matches a pack already handed over.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from records.db import Base

GENESIS = "0" * 64
NAME_LEN = 200


class AuditEntry(Base):
    """One audited write: never updated, never deleted."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(NAME_LEN))
    source: Mapped[str] = mapped_column(String(NAME_LEN))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(80), index=True)
    entity_id: Mapped[str] = mapped_column(String(400))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    note: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The newest entry's number and hash (one row), so deleting the last entries is detected too."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    source: str,
    action: str,
    entity: str,
    entity_id: str,
    before: Any,
    after: Any,
    note: str | None,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of an entry's content in canonical JSON (sorted keys, UTF-8, no spaces)."""
    body = {
        "seq": seq,
        "at": _canonical_time(at),
        "actor": actor,
        "source": source,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": before,
        "after": after,
        "note": note,
        "prev": prev_hash,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who writes and from where (`cli:host/user`, `api:203.0.113.7`, `process:compliance`)."""

    name: str
    source: str


def cli_actor(name: str) -> Actor:
    """`name` acting from a command line on this machine: source `cli:HOST/LOGIN` (the OS account that
    ran the command, so a `--by` that names someone else still shows whose shell it was)."""
    return Actor(name, f"cli:{socket.gethostname()}/{getpass.getuser()}")


@dataclass(frozen=True, slots=True)
class AuditItem:
    """One entry of a batch for `append_many`: what was done to which record, before and after."""

    action: str
    entity: str
    entity_id: str
    before: Any = None
    after: Any = None
    note: str | None = None


def append(
    session: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: str,
    *,
    before: Any = None,
    after: Any = None,
    note: str | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction (it commits with the write it describes)."""
    [entry] = append_many(session, actor, [AuditItem(action, entity, entity_id, before, after, note)], at=at)
    return entry


def append_many(
    session: Session, actor: Actor, entries: Sequence[AuditItem], *, at: datetime | None = None
) -> list[AuditEntry]:
    """Add entries in order, in the caller's transaction: the chain `append` makes, one head update."""
    if not entries:
        return []  # no head read, no flush: nothing to chain
    at = at or datetime.now(UTC)
    # The head row is the chain's lock: SQLite holds the write lock already (BEGIN IMMEDIATE),
    # PostgreSQL takes the row lock, so two writers never chain onto the same predecessor.
    head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one_or_none()
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
    added: list[AuditEntry] = []
    for item in entries:
        seq += 1
        digest = entry_hash(
            seq,
            at,
            actor.name,
            actor.source,
            item.action,
            item.entity,
            item.entity_id,
            item.before,
            item.after,
            item.note,
            prev,
        )
        added.append(
            AuditEntry(
                seq=seq,
                at=at,
                actor=actor.name,
                source=actor.source,
                action=item.action,
                entity=item.entity,
                entity_id=item.entity_id,
                before=item.before,
                after=item.after,
                note=item.note,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    session.add_all(added)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=prev))
    else:
        head.seq, head.hash = seq, prev
    session.flush()
    return added


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One break in the chain, naming the entry (or the range of missing entries)."""

    seq: int
    kind: str  # edited | deleted | relinked | head
    message: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of `verify`: how many entries were checked, the newest hash, every problem."""

    entries: int
    head_seq: int
    head_hash: str
    problems: tuple[AuditProblem, ...]

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems


def _describe(e: AuditEntry) -> str:
    return f"entry {e.seq} ({_canonical_time(e.at)} {e.actor} {e.action} {e.entity} {e.entity_id})"


def iter_entries(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[AuditEntry]:
    """Entries in chain order, optionally those within [since, until)."""
    q = select(AuditEntry).order_by(AuditEntry.seq)
    if since is not None:
        q = q.where(AuditEntry.at >= since)
    if until is not None:
        q = q.where(AuditEntry.at < until)
    yield from session.scalars(q.execution_options(yield_per=2000))


def verify(session: Session) -> AuditReport:
    """Recompute the whole chain: name every edited, deleted or re-linked entry."""
    problems: list[AuditProblem] = []
    expected_seq, prev, count = 1, GENESIS, 0
    last: AuditEntry | None = None
    for e in iter_entries(session):
        count += 1
        if e.seq != expected_seq:
            problems.append(
                AuditProblem(
                    expected_seq,
                    "deleted",
                    f"entries {expected_seq}..{e.seq - 1} are missing (deleted) before {_describe(e)}"
                    if e.seq - 1 > expected_seq
                    else f"entry {expected_seq} is missing (deleted) before {_describe(e)}",
                )
            )
        elif e.prev_hash != prev:
            problems.append(
                AuditProblem(e.seq, "relinked", f"{_describe(e)} does not link to the entry before it")
            )
        digest = entry_hash(
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
        )
        if digest != e.hash:
            problems.append(
                AuditProblem(
                    e.seq, "edited", f"{_describe(e)} was edited: its hash does not match its content"
                )
            )
        expected_seq, prev, last = e.seq + 1, e.hash, e
    head = session.get(AuditHead, 1)
    last_seq, last_hash = (last.seq, last.hash) if last else (0, GENESIS)
    if head is None:
        if last is not None:
            problems.append(AuditProblem(last_seq, "head", "the chain's head row is missing (deleted)"))
    elif head.seq > last_seq:
        problems.append(
            AuditProblem(
                last_seq + 1,
                "deleted",
                f"entries {last_seq + 1}..{head.seq} are missing (deleted) after the last entry {last_seq}",
            )
        )
    elif head.seq != last_seq or head.hash != last_hash:
        problems.append(
            AuditProblem(head.seq, "head", f"the head names entry {head.seq}, the chain ends at {last_seq}")
        )
    return AuditReport(count, last_seq, last_hash, tuple(problems))
