"""The audit log in the browser, for the auditor: entries newest first, a page at a time, filtered by
action or by who; the hash chain verified on request; the CSV and XLSX exports of `GET /api/v1/audit/export`
one click away."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.compliance_support import site_tz
from api.context import Ctx
from api.page_auth import page_require
from api.pages_render import local_time, render
from api.roles import Permission
from api.schemas import MAX_ID
from records.audit import AuditEntry, AuditReport, verify
from records.db import session_factory

router = APIRouter(include_in_schema=False)
Auditor = Annotated[Principal, Depends(page_require(Permission.AUDIT_READ))]
PAGE_SIZE = 100
VALUE_CHARS = 80  # a changed value longer than this is cut (the export has it whole)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One stored entry and what it changed, as the page shows it."""

    entry: AuditEntry
    changes: tuple[str, ...]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def changes(before: Any, after: Any) -> tuple[str, ...]:
    """What an entry changed, a line per field: `field: old → new` (`field: new` when it is new and not
    empty, `field: old → ∅` when it went); a value that is not a mapping is one line."""
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return ()
        if before is None:
            return (_short(after),)
        return (f"{_short(before)} → {'∅' if after is None else _short(after)}",)
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    lines = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key in old and key in new and old[key] == new[key]:
            continue
        if key not in old:
            if new[key] not in (None, "", []):  # a new record's empty fields say nothing
                lines.append(f"{key}: {_short(new[key])}")
        elif key not in new:
            lines.append(f"{key}: {_short(old[key])} → ∅")
        else:
            lines.append(f"{key}: {_short(old[key])} → {_short(new[key])}")
    return tuple(lines)


def audit_rows(
    engine: Engine, before: int | None, action: str, actor: str, limit: int = PAGE_SIZE
) -> tuple[list[AuditRow], int | None]:
    """Up to `limit` entries before `before` (newest first), of actions starting with `action` and by
    `actor` (when given); and the `before` of the next, older page (None: this is the last)."""
    q = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit + 1)
    if before is not None:
        q = q.where(AuditEntry.seq < before)
    if action:
        q = q.where(AuditEntry.action.startswith(action, autoescape=True))
    if actor:
        q = q.where(AuditEntry.actor == actor)
    with session_factory(engine)() as s:
        found = list(s.scalars(q))
    rows = [AuditRow(e, changes(e.before, e.after)) for e in found[:limit]]
    return rows, rows[-1].entry.seq if len(found) > limit else None


def check_chain(engine: Engine) -> AuditReport:
    """The whole chain recomputed (as `roomguard audit SITE verify`)."""
    with session_factory(engine)() as s:
        return verify(s)


@router.get("/audit")
async def audit_page(
    request: Request,
    principal: Auditor,
    ctx: Ctx,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    action: Annotated[str, Query(max_length=40)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    check: Annotated[bool, Query()] = False,
) -> Response:
    """The audit log, newest first; `?check=true` also verifies the hash chain."""
    action, actor = action.strip(), actor.strip()
    rows, older = await run_in_threadpool(audit_rows, ctx.store.read_engine, before, action, actor)
    report = await run_in_threadpool(check_chain, ctx.store.read_engine) if check else None
    tz = site_tz(ctx)
    filters = {k: v for k, v in (("action", action), ("actor", actor)) if v}
    context = {
        "rows": rows,
        "older": older,
        "paged": before is not None,
        "action": action,
        "actor": actor,
        "filters": filters,
        "report": report,
        "user": principal.user,
        "csrf_token": principal.csrf_token or "",
        "local": lambda at: local_time(at, tz),
    }
    return render(request, "audit.html", context)
