"""Alert history in the browser: what happened to the alerts (fired, notified, acknowledged, silenced,
escalated, resolved), newest first, a page at a time, of every alert or one; for "what happened
overnight?" at the start of a shift. The same AlertService history as `GET /api/v1/alerts/history`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from alerts.lifecycle import AlertView
from alerts.service import AlertService
from api import pages_data as data
from api.auth import Principal
from api.compliance_support import site_tz
from api.context import Ctx
from api.i18n import request_lang
from api.page_auth import page_require
from api.pages_render import PageError, local_time, render
from api.roles import Permission
from api.schemas import MAX_ID

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(page_require(Permission.STATUS_READ))]
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One lifecycle event with the alert it happened to."""

    id: int
    at: datetime
    what: str
    alert_id: int
    rule_id: str
    severity: str
    room: str
    device: str
    message: str
    who: str | None
    note: str | None


def history_rows(
    service: AlertService, alert: int | None, before: int | None, lang: str, limit: int = PAGE_SIZE
) -> tuple[list[HistoryRow], int | None]:
    """Up to `limit` events older than history id `before`, newest first, of one alert or all; and the
    `before` of the next, older page (None: this is the last)."""
    events = service.history(alert, None, limit + 1, before=before)[::-1]
    shown = events[:limit]
    views: dict[int, AlertView | None] = {i: service.get(i) for i in {e.alert_id for e in shown}}
    rows = []
    for e in shown:
        view = views[e.alert_id]
        labels = view.labels if view is not None else {}
        rows.append(
            HistoryRow(
                e.id,
                e.at,
                e.what,
                e.alert_id,
                view.rule_id if view is not None else e.key,
                str(view.severity) if view is not None else "",
                labels.get("room", ""),
                labels.get("device", ""),
                data.alert_text(view.texts, "message", lang) if view is not None else "",
                e.who,
                e.note,
            )
        )
    return rows, shown[-1].id if len(events) > limit else None


@router.get("/alerts/history")
async def alert_history_page(
    request: Request,
    principal: Viewer,
    ctx: Ctx,
    alert: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """Alert lifecycle events, newest first; `?alert=ID` for one alert's."""
    service, lang = data.alert_service(ctx), request_lang(request)
    one = await run_in_threadpool(service.get, alert) if alert is not None else None
    if alert is not None and one is None:
        raise PageError(404, "err.not_found", f"無此告警 no alert {alert}")
    rows, older = await run_in_threadpool(history_rows, service, alert, before, lang)
    tz = site_tz(ctx)
    filters = {"alert": alert} if alert is not None else {}
    context = {
        "rows": rows,
        "older": older,
        "paged": before is not None,
        "one": one,
        "one_message": data.alert_text(one.texts, "message", lang) if one is not None else "",
        "filters": filters,
        "user": principal.user,
        "csrf_token": principal.csrf_token or "",
        "local": lambda at: local_time(at, tz),
    }
    return render(request, "alert_history.html", context)
