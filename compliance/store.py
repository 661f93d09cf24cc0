"""The compliance tables of the records database and the one way to write them: through the audit log.

Tables (schema: records/migrations/versions/0002_compliance.py, checked equal to these models by a
test): `compliance_records` (one row per record, the kind's pydantic model as validated JSON, unique by
kind and natural key), `compliance_checks` (each check's result whenever it changes), and
`compliance_state` (the live detectors' progress, so a restart mid-run loses nothing). Every create,
update and void of a record appends an audit entry in the same transaction (records.audit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import JSON, ColumnElement, Integer, String, Text, UniqueConstraint, and_, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from compliance.kinds import KINDS, RecordModel, kind
from compliance.result import CheckResult, Evidence, Status
from records.audit import Actor, append
from records.db import Base

NAME_LEN = 200
M = TypeVar("M", bound=RecordModel)


class RecordRow(Base):
    """One compliance record: kind, natural key, its dates (for period queries) and its data."""

    __tablename__ = "compliance_records"
    __table_args__ = (UniqueConstraint("kind", "ref", name="kind_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    ref: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(index=True)
    until: Mapped[datetime | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(NAME_LEN))
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    void_reason: Mapped[str | None] = mapped_column(Text)


class CheckRow(Base):
    """A check's result at the time it changed (status, reason or due date)."""

    __tablename__ = "compliance_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(String(80), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason_zh: Mapped[str] = mapped_column(Text)
    reason_en: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]] = mapped_column(JSON)
    last_evidence_at: Mapped[datetime | None]
    next_due: Mapped[datetime | None]


class StateRow(Base):
    """A named piece of the compliance process's progress (JSON)."""

    __tablename__ = "compliance_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class PutResult:
    """What `put` did to one record."""

    kind: str
    ref: str
    outcome: Outcome


class RecordNotFound(LookupError):
    """No record of that kind and key."""


def _dump(record: RecordModel) -> dict[str, Any]:
    return record.model_dump(mode="json")


def put(session: Session, record: RecordModel, actor: Actor, now: datetime, *, action: str = "") -> PutResult:
    """Create or update one record by its natural key, audited; an identical record changes nothing."""
    data = _dump(record)
    ref = record.ref()
    row = session.scalars(
        select(RecordRow).where(RecordRow.kind == record.KIND, RecordRow.ref == ref)
    ).one_or_none()
    entity = f"compliance.{record.KIND}"
    if row is None:
        session.add(
            RecordRow(
                kind=record.KIND,
                ref=ref,
                at=record.record_at(),
                until=record.record_until(),
                data=data,
                version=1,
                created_at=now,
                created_by=actor.name,
                updated_at=now,
                updated_by=actor.name,
            )
        )
        append(session, actor, action or "create", entity, ref, after=data, at=now)
        return PutResult(record.KIND, ref, "created")
    if row.data == data and row.voided_at is None:
        return PutResult(record.KIND, ref, "unchanged")
    before = {**row.data, **({"voided": row.void_reason} if row.voided_at else {})}
    row.data, row.at, row.until = data, record.record_at(), record.record_until()
    row.version += 1
    row.updated_at, row.updated_by = now, actor.name
    row.voided_at = row.voided_by = row.void_reason = None
    append(session, actor, action or "update", entity, ref, before=before, after=data, at=now)
    return PutResult(record.KIND, ref, "updated")


def void(session: Session, kind_name: str, ref: str, actor: Actor, reason: str, now: datetime) -> None:
    """Mark a record void (kept, shown as void, left out of checks), audited; records are never deleted."""
    row = session.scalars(
        select(RecordRow).where(RecordRow.kind == kind_name, RecordRow.ref == ref)
    ).one_or_none()
    if row is None:
        raise RecordNotFound(f"no {kind_name} record {ref!r}")
    row.voided_at, row.voided_by, row.void_reason = now, actor.name, reason
    row.version += 1
    append(session, actor, "void", f"compliance.{kind_name}", ref, before=row.data, note=reason, at=now)


# Kinds with an end (a visit, a rack tenancy, an incident): without one they are still open, so they
# overlap every later period.
OPEN_ENDED = tuple(name for name, model in KINDS.items() if model.UNTIL)


def _overlaps(since: datetime) -> ColumnElement[bool]:
    return or_(
        RecordRow.at >= since,
        RecordRow.until >= since,
        and_(RecordRow.until.is_(None), RecordRow.kind.in_(OPEN_ENDED)),
    )


def load(session: Session, model: type[M], ref: str) -> M | None:
    """One live (not void) record of a kind by key."""
    row = session.scalars(
        select(RecordRow).where(
            RecordRow.kind == model.KIND, RecordRow.ref == ref, RecordRow.voided_at.is_(None)
        )
    ).one_or_none()
    return None if row is None else model.model_validate(row.data)


def records(
    session: Session, model: type[M], *, since: datetime | None = None, until: datetime | None = None
) -> list[M]:
    """Live records of a kind that overlap [since, until), oldest first."""
    q = select(RecordRow).where(RecordRow.kind == model.KIND, RecordRow.voided_at.is_(None))
    if until is not None:
        q = q.where(RecordRow.at < until)
    if since is not None:
        q = q.where(_overlaps(since))
    return [model.model_validate(r.data) for r in session.scalars(q.order_by(RecordRow.at, RecordRow.id))]


def rows(
    session: Session, kind_name: str, *, since: datetime | None = None, until: datetime | None = None
) -> Sequence[RecordRow]:
    """Rows of a kind (void ones too, for exports) that overlap [since, until)."""
    kind(kind_name)
    q = select(RecordRow).where(RecordRow.kind == kind_name)
    if until is not None:
        q = q.where(RecordRow.at < until)
    if since is not None:
        q = q.where(_overlaps(since))
    return session.scalars(q.order_by(RecordRow.at, RecordRow.id)).all()


class Records:
    """Transactions over the compliance tables: each call is one commit."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def put_all(
        self, items: Iterable[RecordModel], actor: Actor, now: datetime, *, action: str = ""
    ) -> list[PutResult]:
        """Write every record in one transaction (all or nothing)."""
        with self.sessions.begin() as s:
            return [put(s, r, actor, now, action=action) for r in items]

    def void(self, kind_name: str, ref: str, actor: Actor, reason: str, now: datetime) -> None:
        """Void one record (audited)."""
        with self.sessions.begin() as s:
            void(s, kind_name, ref, actor, reason, now)

    def of_kind(
        self, model: type[M], *, since: datetime | None = None, until: datetime | None = None
    ) -> list[M]:
        """Live records of a kind overlapping [since, until)."""
        with self.sessions() as s:
            return records(s, model, since=since, until=until)

    def get(self, model: type[M], ref: str) -> M | None:
        """One live record by key."""
        with self.sessions() as s:
            return load(s, model, ref)

    # -- check results

    def save_results(self, results: Iterable[CheckResult], now: datetime) -> int:
        """Append each result whose status, reasons or due date differ from the item's last one."""
        written = 0
        with self.sessions.begin() as s:
            for r in results:
                last = s.scalars(
                    select(CheckRow).where(CheckRow.item == r.item).order_by(CheckRow.id.desc()).limit(1)
                ).one_or_none()
                if last is not None and (last.status, last.reason_zh, last.reason_en, last.next_due) == (
                    r.status,
                    r.reason_zh,
                    r.reason_en,
                    r.next_due,
                ):
                    continue
                s.add(
                    CheckRow(
                        item=r.item,
                        at=now,
                        status=r.status,
                        reason_zh=r.reason_zh,
                        reason_en=r.reason_en,
                        evidence=[evidence_json(e) for e in r.evidence],
                        last_evidence_at=r.last_evidence_at,
                        next_due=r.next_due,
                    )
                )
                written += 1
        return written

    def check_history(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[CheckResultAt]:
        """Every stored result in [since, until) with the one in force at `since`, oldest first."""
        with self.sessions() as s:
            q = select(CheckRow)
            if until is not None:
                q = q.where(CheckRow.at < until)
            found = list(s.scalars(q.order_by(CheckRow.id)))
        out: list[CheckResultAt] = []
        in_force: dict[str, CheckResultAt] = {}
        for row in found:
            item = CheckResultAt(row.at, result_of(row))
            if since is not None and row.at < since:
                in_force[row.item] = item
            else:
                out.append(item)
        return sorted([*in_force.values(), *out], key=lambda x: x.at)

    # -- detector state

    def load_state(self, key: str) -> dict[str, Any] | None:
        """A saved piece of process state."""
        with self.sessions() as s:
            row = s.get(StateRow, key)
            return None if row is None else dict(row.data)

    def save_state(self, key: str, data: dict[str, Any], now: datetime) -> None:
        """Save a piece of process state (replacing the previous one)."""
        with self.sessions.begin() as s:
            save_state(s, key, data, now)


def save_state(session: Session, key: str, data: dict[str, Any], now: datetime) -> None:
    """Save a piece of process state in the caller's transaction."""
    row = session.get(StateRow, key)
    if row is None:
        session.add(StateRow(key=key, data=data, updated_at=now))
    else:
        row.data, row.updated_at = data, now


@dataclass(frozen=True, slots=True)
class CheckResultAt:
    """A stored check result and when it took effect."""

    at: datetime
    result: CheckResult


def evidence_json(e: Evidence) -> dict[str, Any]:
    """An evidence pointer as JSON."""
    return {"kind": e.kind, "ref": e.ref, "at": e.at.isoformat() if e.at else None, "note": e.note}


def result_of(row: CheckRow) -> CheckResult:
    """The CheckResult a stored row holds."""
    status: Status = row.status  # type: ignore[assignment]
    return CheckResult(
        row.item,
        status,
        row.reason_zh,
        row.reason_en,
        tuple(
            Evidence(
                e["kind"], e["ref"], datetime.fromisoformat(e["at"]) if e.get("at") else None, e.get("note")
            )
            for e in row.evidence
        ),
        row.last_evidence_at,
        row.next_due,
    )
