"""The status page and its forms (ack, silence), server-rendered, working without JavaScript: each form
posts with the session's csrf_token and is answered with 303 back to the page and a flash message, or
with the page again and the reason (422) when the input is wrong."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from alerts.silences import alert_matchers
from api import pages_data as data
from api.auth import Principal, audit_actor
from api.compliance_support import site_tz
from api.context import AppContext, Ctx
from api.i18n import request_lang, translate
from api.live_model import Live, LiveSnapshot, LiveSource
from api.page_auth import page_require
from api.page_cache import request_versions
from api.pages_render import PageError, flash, local_time, render
from api.roles import Permission
from api.routes_board import board_lines, upcoming_tests
from api.schemas import MAX_ID

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(page_require(Permission.STATUS_READ))]
Actor_ = Annotated[Principal, Depends(page_require(Permission.ALERTS_ACT))]
# An alert id in a form's address (beyond SQLite's INTEGER it cannot exist: a 422, not a 500).
AlertId = Annotated[int, Path(ge=1, le=MAX_ID)]
SILENCE_FOR = {"1h": timedelta(hours=1), "4h": timedelta(hours=4)}


def _gather(
    ctx: AppContext, snapshot: LiveSnapshot, lang: str, versions: tuple[int, ...], now: datetime
) -> dict[str, Any]:
    """Everything the status page shows (blocking: database reads)."""

    def records_part() -> dict[str, Any]:
        schedule = upcoming_tests(ctx)
        return {
            "board": data.board_rows(board_lines(ctx), lang),
            "due": data.due_rows(schedule, lang),
            "recent": data.recent_tests(schedule),
            "duty": data.duty(ctx, None, lang),
        }

    # The board, schedule and roster change with records (the version) or the minute (a shift ends):
    # computed once per change, not per screen refreshing the page (api/page_cache.py).
    minute = now.replace(second=0, microsecond=0)
    key = ("status", lang, versions, minute)
    return {
        "now": now,
        "snapshot": snapshot,
        "rooms": data.room_views(ctx.site, snapshot, now),
        "alerts": data.alert_rows(data.alert_service(ctx).list_open(), lang),
        **ctx.page_cache.get(key, records_part),
    }


async def status_page(
    request: Request,
    principal: Principal,
    ctx: AppContext,
    live: LiveSource,
    *,
    error: str | None = None,
    error_alert: int | None = None,
    status: int = 200,
) -> Response:
    """The status page (with an error next to one alert's forms when a form was wrong)."""
    lang = request_lang(request)
    request.state.page_path = "/"
    now, snapshot = ctx.clock(), live.snapshot()
    versions = request_versions(request, ctx.store.read_engine)  # read once with the auth (event loop)
    # A screen refreshing the page gets the same bytes while nothing it shows changed: per caller (the
    # page carries their name and CSRF token) and language, per snapshot (a live source hands out the
    # same one until a message arrives), records/alerts version and second (the readings' ages).
    plain = error is None and status == 200 and not request.query_params
    caller = principal.session_id or f"{principal.via}:{principal.user.id}"
    key = ("page", caller, lang, versions, now.replace(microsecond=0))
    held = ctx.page_cache.peek(key) if plain else None
    if held is not None and held[0] is snapshot:
        return HTMLResponse(held[1])
    gathered = await run_in_threadpool(_gather, ctx, snapshot, lang, versions, now)
    tz = site_tz(ctx)
    context = {
        **gathered,
        "user": principal.user,
        "csrf_token": principal.csrf_token or "",
        "can_act": Permission.ALERTS_ACT in principal.permissions,
        "can_record": Permission.RECORDS_WRITE in principal.permissions,
        "can_review": Permission.ACCESS_READ in principal.permissions,
        "refresh_s": ctx.settings.page_refresh_s if error is None else None,
        "pausable": True,
        "flash": flash(request),
        "error": error,
        "error_alert": error_alert,
        "local": lambda at: local_time(at, tz),
        "site_name": ctx.site.site.name if ctx.site is not None else "",
    }
    response = render(request, "status.html", context, status)
    if plain:
        ctx.page_cache.put(key, (snapshot, bytes(response.body)))
    return response


@router.get("/")
async def home(request: Request, principal: Viewer, ctx: Ctx, live: Live) -> Response:
    """The status page: rooms and readings, floor view, open alerts, the board, tests due, duty."""
    return await status_page(request, principal, ctx, live)


def _back(key: str) -> Response:
    return RedirectResponse(f"/?msg={key}", status_code=303)


@router.post("/alerts/{alert_id}/ack")
async def ack_alert(
    alert_id: AlertId,
    request: Request,
    principal: Actor_,
    ctx: Ctx,
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Acknowledge an alert (reminders and escalation stop); back to the status page."""
    service = data.alert_service(ctx)
    by = principal.user.username
    actor = audit_actor(principal, request)
    try:
        await run_in_threadpool(
            lambda: service.ack(alert_id, by, note.strip() or None, ctx.clock(), actor=actor)
        )
    except KeyError:
        raise PageError(404, "err.not_found", f"無此告警 no alert {alert_id}") from None
    return _back("flash.acked")


def silence_end(duration: str, until: str, now: datetime, tz: Any) -> datetime | str:
    """When a silence asked for by the form ends, or the catalogue key of what is wrong."""
    if duration in SILENCE_FOR:
        return now + SILENCE_FOR[duration]
    if duration != "until":
        return "err.duration"
    try:
        ends = datetime.fromisoformat(until.strip())
    except ValueError:
        return "err.until"
    ends = ends if ends.tzinfo is not None else ends.replace(tzinfo=tz)
    return ends if ends > now else "err.until"


@router.post("/alerts/{alert_id}/silence")
async def silence_alert(
    alert_id: AlertId,
    request: Request,
    principal: Actor_,
    ctx: Ctx,
    live: Live,
    duration: Annotated[str, Form(max_length=10)],
    until: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Silence one alert (its rule and labels) for 1 h, 4 h or until a time, with a reason."""
    service = data.alert_service(ctx)
    alert = await run_in_threadpool(service.get, alert_id)
    if alert is None:
        raise PageError(404, "err.not_found", f"無此告警 no alert {alert_id}")
    now = ctx.clock()
    ends = silence_end(duration, until, now, site_tz(ctx))
    problem = ends if isinstance(ends, str) else ("err.reason" if not reason.strip() else None)
    if problem is not None:
        message = translate(request_lang(request), problem)
        return await status_page(
            request, principal, ctx, live, error=message, error_alert=alert_id, status=422
        )
    assert isinstance(ends, datetime)
    by = principal.user.username
    actor = audit_actor(principal, request)
    matchers = alert_matchers(alert)
    await run_in_threadpool(
        lambda: service.silence(matchers, now, ends, reason.strip(), by, now, actor=actor)
    )
    return _back("flash.silenced")
