"""The door display: no login, read-only, large text for a screen at the room's entrance. It shows the
room, the duty operator on shift now and next (the posted roster, CC-16000 (七)1), the room's state and
when it was updated; nothing else (no alert details, no other personal data)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import pages_data as data
from api.compliance_support import site_tz
from api.context import AppContext, Ctx
from api.i18n import request_lang
from api.live_model import Live, LiveSource
from api.pages_render import PageError, local_time, render

router = APIRouter(include_in_schema=False)


def _doors(ctx: AppContext, live: LiveSource, room: str | None, lang: str) -> list[dict[str, Any]]:
    site = ctx.site
    rooms = [(r.id, r.name) for r in site.rooms] if site is not None else []
    if room is not None:
        rooms = [(r, n) for r, n in rooms if r == room]
        if not rooms:
            raise PageError(404, "err.not_found", f"無此機房 no room {room!r}")
    now = ctx.clock()
    snapshot = live.snapshot()
    alerts = data.alert_service(ctx).list_open()
    exclude = frozenset(site.compliance.environment.exclude_devices) if site is not None else frozenset()
    return [
        {"state": data.door_state(r, name, snapshot, alerts, now, exclude), "duty": data.duty(ctx, r, lang)}
        for r, name in rooms
    ]


async def _door(request: Request, ctx: AppContext, live: LiveSource, room: str | None) -> Response:
    doors = await run_in_threadpool(_doors, ctx, live, room, request_lang(request))
    tz = site_tz(ctx)
    context = {
        "doors": doors,
        "refresh_s": ctx.settings.page_refresh_s,
        "pausable": True,  # reloads by script (a <noscript> meta refresh without JavaScript)
        "updated": local_time(ctx.clock(), tz),
        "local": lambda at: local_time(at, tz),
        "site_name": ctx.site.site.name if ctx.site is not None else "",
    }
    return render(request, "door.html", context)


@router.get("/door")
async def door_all(request: Request, ctx: Ctx, live: Live) -> Response:
    """Every room's door display on one screen."""
    return await _door(request, ctx, live, None)


@router.get("/door/{room}")
async def door(room: str, request: Request, ctx: Ctx, live: Live) -> Response:
    """One room's door display (404 page for a room the site file does not have)."""
    return await _door(request, ctx, live, room)
