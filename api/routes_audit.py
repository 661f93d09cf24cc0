"""The audit log for the auditor: entries in chain order, a page at a time, and the chain's check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, require
from api.context import Ctx
from api.errors import ErrorBody
from api.roles import Permission
from records.audit import AuditEntry, verify
from records.db import session_factory

router = APIRouter(tags=["audit"])
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not logged in."},
    403: {"model": ErrorBody, "description": "Needs audit.read (auditor, admin)."},
    422: {"model": ErrorBody, "description": "Invalid query."},
}


class AuditEntryOut(BaseModel):
    """One entry as stored, with its hashes (so a copy can be checked)."""

    seq: int
    at: datetime
    actor: str
    source: str
    action: str
    entity: str
    entity_id: str
    before: Any = None
    after: Any = None
    note: str | None = None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """A page of entries; `next_after` fetches the next (null: this was the last)."""

    entries: list[AuditEntryOut]
    next_after: int | None = Field(description="Pass as `after` for the next page.")


class AuditCheck(BaseModel):
    """The chain's verification (`roomguard audit SITE verify` does the same)."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]


@router.get("/api/v1/audit", response_model=AuditPage, responses=ERRORS)
async def audit_entries(
    _: Auditor,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, description="Entries after this sequence number.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 200,
) -> AuditPage:
    """Audit log entries in chain order. 稽核軌跡。"""

    def page() -> AuditPage:
        with session_factory(ctx.engine)() as s:
            q = select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit + 1)
            rows = list(s.scalars(q))
        more = len(rows) > limit
        rows = rows[:limit]
        entries = [
            AuditEntryOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                source=e.source,
                action=e.action,
                entity=e.entity,
                entity_id=e.entity_id,
                before=e.before,
                after=e.after,
                note=e.note,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in rows
        ]
        return AuditPage(entries=entries, next_after=rows[-1].seq if more else None)

    return await run_in_threadpool(page)


@router.get("/api/v1/audit/verify", response_model=AuditCheck, responses=ERRORS)
async def audit_verify(_: Auditor, ctx: Ctx) -> AuditCheck:
    """Recompute the audit log's hash chain. 驗證稽核軌跡。"""

    def check() -> AuditCheck:
        with session_factory(ctx.engine)() as s:
            report = verify(s)
        return AuditCheck(
            ok=report.ok,
            entries=report.entries,
            head_seq=report.head_seq,
            head_hash=report.head_hash,
            problems=[p.message for p in report.problems],
        )

    return await run_in_threadpool(check)
