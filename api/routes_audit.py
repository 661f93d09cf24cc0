"""The audit log for the auditor: entries in chain order, a page at a time, and the chain's check."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, audit_actor, require
from api.compliance_support import IsoTime, site_tz
from api.context import Ctx
from api.errors import ErrorBody
from api.roles import Permission
from api.schemas import MAX_ID
from compliance.export import write_csv, write_workbook
from compliance.pack import audit_table, verification_table
from records.audit import AuditEntry, append, iter_entries, verify
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
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Entries after this sequence number.")] = 0,
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


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get(
    "/api/v1/audit/export",
    response_class=Response,
    responses={
        **ERRORS,
        200: {
            "content": {t: {} for t in EXPORT_TYPES.values()},
            "description": "The entries (and, in xlsx, the chain's verification).",
        },
    },
)
async def audit_export(
    principal: Auditor,
    ctx: Ctx,
    request: Request,
    fmt: Annotated[Literal["csv", "xlsx"], Query(alias="format", description="csv or xlsx.")] = "csv",
    since: Annotated[IsoTime | None, Query(description="Entries from this time.")] = None,
    until: Annotated[IsoTime | None, Query(description="… up to this time (excluded).")] = None,
) -> Response:
    """The audit log as the evidence pack has it: CSV (UTF-8 with BOM, zh / en headers) or XLSX with the
    chain's verification; the export itself is audited `audit.export` first. 匯出稽核軌跡。"""
    actor, now, tz = audit_actor(principal, request), ctx.clock(), site_tz(ctx)
    asked = {
        "format": fmt,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }

    def export() -> bytes:
        sessions = session_factory(ctx.engine)
        with sessions.begin() as s:
            append(s, actor, "audit.export", "audit", fmt, after=asked, at=now)
        with sessions() as s:
            entries, report = list(iter_entries(s, since=since, until=until)), verify(s)
        tables = [audit_table(entries, report), verification_table(report)]
        with tempfile.TemporaryDirectory(prefix="audit-export-") as folder:
            path = Path(folder) / f"audit.{fmt}"
            if fmt == "csv":
                write_csv(path, tables[0], tz)
            else:
                cover = [("稽核軌跡 Audit log", "roomguard"), ("匯出人 Exported by", actor.name)]
                write_workbook(path, tables, tz, cover=cover, timestamp=now)
            return path.read_bytes()

    data = await run_in_threadpool(export)
    name = f"audit-{now.astimezone(tz):%Y%m%d-%H%M%S}.{fmt}"
    return Response(
        data, media_type=EXPORT_TYPES[fmt], headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
