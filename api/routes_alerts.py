"""Alerts in the API: the open alerts with their forecast text, acknowledging one, their history, and
silences (of "this alert" or of matchers; maintenance windows). Every write goes through
alerts.service.AlertService, as `roomguard alerts` does, and is audited in the write's transaction."""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from alerts.lifecycle import AlertView, Policy
from alerts.pack import site_rule_set
from alerts.render import TAIPEI, alert_payload
from alerts.service import AlertService, HistoryRecord, SilenceRecord
from alerts.silences import DURATION_FORM, alert_matchers, check_matcher_names, matcher_names, parse_duration
from api.auth import Principal, audit_actor, require
from api.context import AppContext, Ctx
from api.errors import ApiError, ErrorBody
from api.roles import Permission
from api.schemas import MAX_ID, UtcTime
from records.db import session_factory
from siteconfig.alert_rules import RuleSet
from siteconfig.alerts_config import AlertsConfig

router = APIRouter(tags=["alerts"])
Reader = Annotated[Principal, Depends(require(Permission.ALERTS_READ))]
Acting = Annotated[Principal, Depends(require(Permission.ALERTS_ACT))]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A body that is not JSON."},
    401: {"model": ErrorBody, "description": "Not logged in."},
    403: {"model": ErrorBody, "description": "Not allowed for the caller's roles, or no CSRF token."},
    404: {"model": ErrorBody, "description": "No such alert or silence."},
    422: {"model": ErrorBody, "description": "Invalid request (the message names the field)."},
}
TEXT_MAX = 2000
Severity = Literal["info", "warning", "critical"]

# ------------------------------------------------------------------------------------ the service

_services: weakref.WeakKeyDictionary[Engine, tuple[object, AlertService]] = weakref.WeakKeyDictionary()


def build_alert_service(ctx: AppContext) -> AlertService:
    """An AlertService as `roomguard alerts` builds it from the site file (rules, policy, time zone)
    over the app's records database; without a site, no rules and the default policy."""
    sessions, reads = session_factory(ctx.engine), session_factory(ctx.store.read_engine)
    if ctx.site is None:
        return AlertService(sessions, RuleSet(), Policy(), tz=TAIPEI, reads=reads)
    tz = ctx.site.site.timezone
    return AlertService(
        sessions,
        site_rule_set(ctx.site.alerts),
        Policy.from_config(ctx.site.alerts or AlertsConfig(), tz),
        tz=ZoneInfo(tz),
        reads=reads,
    )


def alert_service(ctx: AppContext) -> AlertService:
    """The app's AlertService, built once per records engine and site (the rule pack is parsed once)."""
    cached = _services.get(ctx.engine)
    if cached is None or cached[0] is not ctx.site:
        cached = (ctx.site, build_alert_service(ctx))
        _services[ctx.engine] = cached
    return cached[1]


# ----------------------------------------------------------------------------------------- models


class Texts(BaseModel):
    """One text in Traditional Chinese and English (as notifications word it)."""

    zh_TW: str
    en: str


class AlertOut(BaseModel):
    """An alert as people see it: what, where, since when, the trend, who acknowledged it."""

    id: int
    key: str = Field(description="The dedup key (rule:site:room:device:metric).")
    rule: str
    severity: Severity
    state: Literal["firing", "resolved"]
    labels: dict[str, str]
    value: float | int | bool | str | None = Field(description="The value it fired (or resolved) with.")
    limit: float | None
    since: datetime = Field(description="When this episode started (UTC).")
    resolved_at: datetime | None
    last_event_at: datetime
    message: Texts
    forecast: Texts | None = Field(description="Time to the limit at the current trend, when there is one.")
    margin: Texts | None = Field(description="The UPS/generator power-chain margin, when it applies.")
    acked: bool
    acked_by: str | None
    acked_at: datetime | None
    ack_note: str | None
    suppressed: str | None = Field(
        description="Why it is not notified: silence:<id>, maintenance:<id>, inhibited:<key>, flapping."
    )
    silenced: bool = Field(description="Muted by a silence or a maintenance window.")


class AlertList(BaseModel):
    """The open (firing) alerts, oldest first."""

    alerts: list[AlertOut]


class AckIn(BaseModel):
    """An acknowledgement: what is being done."""

    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=TEXT_MAX, description="Why, what is being done.")


class HistoryOut(BaseModel):
    """One lifecycle event of one alert."""

    id: int
    key: str
    alert_id: int
    at: datetime
    what: str = Field(description="fired, resolved, acked, silenced, inhibited, notified, escalated, …")
    who: str | None
    note: str | None


class HistoryPage(BaseModel):
    """History entries, newest first; `next_before` fetches the older ones (null: no more)."""

    entries: list[HistoryOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class SilenceIn(BaseModel):
    """A silence or maintenance window: of `matchers` or of one `alert`; for a `duration` or `until`."""

    model_config = ConfigDict(extra="forbid")
    matchers: dict[str, str | list[str]] | None = Field(
        None,
        description="label (or `rule`) → value, glob or list of values; every one must match.",
        examples=[{"room": "mr1", "rule": "temp_high"}],
    )
    alert: str | None = Field(
        None, max_length=400, description="Silence this alert (id or dedup key): its rule and labels."
    )
    duration: str | None = Field(None, max_length=20, description=f"How long: {DURATION_FORM}.")
    until: UtcTime | None = Field(None, description="Or until when (with a time zone).")
    starts: UtcTime | None = Field(None, description="When it starts (default: now).")
    reason: str = Field(min_length=1, max_length=TEXT_MAX, description="Why (part of the record).")
    kind: Literal["silence", "maintenance"] = "silence"


class SilenceOut(BaseModel):
    """A silence or maintenance window as stored."""

    id: int
    kind: Literal["silence", "maintenance"]
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    removed_by: str | None
    removed_at: datetime | None
    active: bool = Field(description="In force now.")


class SilenceList(BaseModel):
    """Silences in force or to come (with `all`: ended ones too), by id."""

    silences: list[SilenceOut]


# ------------------------------------------------------------------------------------ conversions


def _texts(payload_texts: dict[str, str | None], part: str) -> Texts | None:
    zh, en = payload_texts.get(f"{part}_zh_TW"), payload_texts.get(f"{part}_en")
    return Texts(zh_TW=zh or en or "", en=en or zh or "") if zh or en else None


def alert_out(a: AlertView) -> AlertOut:
    """The API's view of a stored alert (texts as the `roomguard.alert/1` payload words them)."""
    texts = alert_payload(a)["texts"]
    return AlertOut(
        id=a.id or 0,
        key=a.key,
        rule=a.rule_id,
        severity=a.severity,
        state=a.state,
        labels=dict(a.labels),
        value=a.value,
        limit=a.limit,
        since=a.started_at,
        resolved_at=a.resolved_at,
        last_event_at=a.last_event_at,
        message=Texts(zh_TW=texts["zh_TW"] or "", en=texts["en"] or ""),
        forecast=_texts(texts, "forecast"),
        margin=_texts(texts, "margin"),
        acked=a.acked,
        acked_by=a.acked_by,
        acked_at=a.acked_at,
        ack_note=a.ack_note,
        suppressed=a.suppressed,
        silenced=(a.suppressed or "").startswith(("silence:", "maintenance:")),
    )


def _silence_out(s: SilenceRecord, now: datetime) -> SilenceOut:
    return SilenceOut(
        id=s.id,
        kind=s.kind,
        matchers=dict(s.matchers),
        starts_at=s.starts_at,
        ends_at=s.ends_at,
        reason=s.reason,
        created_by=s.created_by,
        created_at=s.created_at,
        removed_by=s.removed_by,
        removed_at=s.removed_at,
        active=s.removed_at is None and s.starts_at <= now < s.ends_at,
    )


def _history_out(h: HistoryRecord) -> HistoryOut:
    return HistoryOut(id=h.id, key=h.key, alert_id=h.alert_id, at=h.at, what=h.what, who=h.who, note=h.note)


def alert_ref(text: str) -> str | int:
    """An alert id (ASCII digits, as the CLI reads it) or a dedup key."""
    return int(text) if text.isascii() and text.isdigit() and int(text) <= MAX_ID else text


def _no_alert(alert: str) -> ApiError:
    return ApiError(404, "alert_not_found", f"找不到告警 no alert {alert!r} (id or dedup key)")


def _no_silence(silence_id: int) -> ApiError:
    return ApiError(404, "silence_not_found", f"找不到靜音 no silence {silence_id}")


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_silence", f"靜音設定不符 invalid silence: {field}: {message}")


def open_alert_views(ctx: AppContext) -> list[AlertOut]:
    """The open (firing) alerts, oldest first, with their forecast texts; for the status page. Blocking
    (database): call it in a thread pool from async code."""
    return [alert_out(a) for a in alert_service(ctx).list_open() if a.state == "firing"]


# ----------------------------------------------------------------------------------------- alerts

AlertArg = Annotated[str, Path(max_length=400, description="Alert id or dedup key.")]
SilenceId = Annotated[int, Path(ge=1, le=MAX_ID, description="Silence id.")]


@router.get("/api/v1/alerts", response_model=AlertList, responses=ERRORS)
async def list_alerts(_: Reader, ctx: Ctx) -> AlertList:
    """Open (firing) alerts, oldest first, silenced and inhibited ones too. 目前告警。"""
    return AlertList(alerts=await run_in_threadpool(open_alert_views, ctx))


@router.get("/api/v1/alerts/history", response_model=HistoryPage, responses=ERRORS)
async def alert_history(
    _: Reader,
    ctx: Ctx,
    alert: Annotated[str | None, Query(max_length=400, description="Only this alert (id or key).")] = None,
    since: Annotated[UtcTime | None, Query(description="Only events at or after this time.")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Events older than this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 50,
) -> HistoryPage:
    """What happened to alerts: fired, notified, acked, silenced, resolved; newest first. 告警歷程。"""
    service = alert_service(ctx)

    def page() -> HistoryPage:
        ref = None if alert is None else alert_ref(alert)
        if ref is not None and service.get(ref) is None:
            raise _no_alert(str(alert))
        rows = service.history(ref, since, limit + 1, before=before)[::-1]  # newest first
        more = len(rows) > limit
        rows = rows[:limit]
        return HistoryPage(entries=[_history_out(h) for h in rows], next_before=rows[-1].id if more else None)

    return await run_in_threadpool(page)


@router.get("/api/v1/alerts/{alert}", response_model=AlertOut, responses=ERRORS)
async def get_alert(_: Reader, ctx: Ctx, alert: AlertArg) -> AlertOut:
    """One alert by id or dedup key (resolved ones too). 告警明細。"""
    view = await run_in_threadpool(alert_service(ctx).get, alert_ref(alert))
    if view is None:
        raise _no_alert(alert)
    return alert_out(view)


@router.post("/api/v1/alerts/{alert}/ack", response_model=AlertOut, responses=ERRORS)
async def ack_alert(
    principal: Acting,
    request: Request,
    ctx: Ctx,
    alert: AlertArg,
    body: Annotated[AckIn | None, Body()] = None,
) -> AlertOut:
    """Acknowledge an alert: reminders and escalation stop (the first acknowledgement stands). 確認告警。"""
    note = body.note if body is not None and body.note else None
    actor = audit_actor(principal, request)
    service = alert_service(ctx)
    try:
        view = await run_in_threadpool(
            lambda: service.ack(alert_ref(alert), principal.user.username, note, ctx.clock(), actor=actor)
        )
    except KeyError:
        raise _no_alert(alert) from None
    return alert_out(view)


# --------------------------------------------------------------------------------------- silences


@router.get("/api/v1/silences", response_model=SilenceList, responses=ERRORS)
async def list_silences(
    _: Reader,
    ctx: Ctx,
    every: Annotated[bool, Query(alias="all", description="Ended and removed ones too.")] = False,
) -> SilenceList:
    """Silences and maintenance windows in force or to come. 靜音與維護時段。"""
    now = ctx.clock()
    rows = await run_in_threadpool(alert_service(ctx).silences, now, every)
    return SilenceList(silences=[_silence_out(s, now) for s in rows])


def _silence_matchers(service: AlertService, body: SilenceIn) -> dict[str, str | list[str]]:
    if (body.matchers is None) == (body.alert is None):
        raise _invalid("matchers", "give matchers or alert (an alert id or dedup key), one of the two")
    if body.alert is not None:
        view = service.get(alert_ref(body.alert))
        if view is None:
            raise _invalid("alert", f"no alert {body.alert!r} (id or dedup key)")
        return alert_matchers(view)
    assert body.matchers is not None
    try:
        check_matcher_names(body.matchers, matcher_names(service.label_names()))
    except ValueError as exc:
        raise _invalid("matchers", str(exc)) from None
    return body.matchers


def _silence_end(body: SilenceIn, starts: datetime) -> datetime:
    if (body.duration is None) == (body.until is None):
        raise _invalid("duration", f"give duration ({DURATION_FORM}) or until, one of the two")
    if body.until is not None:
        if body.until <= starts:
            raise _invalid("until", "must be after the start")
        return body.until
    assert body.duration is not None
    try:
        return starts + parse_duration(body.duration)
    except ValueError as exc:
        raise _invalid("duration", str(exc)) from None
    except OverflowError:
        raise _invalid("duration", f"too long; {DURATION_FORM}") from None


@router.post("/api/v1/silences", response_model=SilenceOut, status_code=201, responses=ERRORS)
async def create_silence(principal: Acting, request: Request, ctx: Ctx, body: SilenceIn) -> SilenceOut:
    """Silence matching alerts (stored and shown, not notified), or open a maintenance window. 靜音。"""
    actor = audit_actor(principal, request)
    service = alert_service(ctx)

    def create() -> SilenceOut:
        now = ctx.clock()
        matchers = _silence_matchers(service, body)
        starts = body.starts or now
        ends = _silence_end(body, starts)
        try:
            sid = service.silence(
                matchers, starts, ends, body.reason, principal.user.username, now, body.kind, actor=actor
            )
        except ValueError as exc:
            raise _invalid("matchers" if "matcher" in str(exc) else "reason", str(exc)) from None
        record = service.get_silence(sid)
        assert record is not None
        return _silence_out(record, now)

    return await run_in_threadpool(create)


@router.delete("/api/v1/silences/{silence_id}", response_model=SilenceOut, responses=ERRORS)
async def end_silence(principal: Acting, request: Request, ctx: Ctx, silence_id: SilenceId) -> SilenceOut:
    """End a silence now (it is kept, marked removed). 解除靜音。"""
    actor = audit_actor(principal, request)
    service = alert_service(ctx)

    def end() -> SilenceOut:
        now = ctx.clock()
        try:
            service.unsilence(silence_id, principal.user.username, now, actor=actor)
        except KeyError:
            raise _no_silence(silence_id) from None
        record = service.get_silence(silence_id)
        assert record is not None
        return _silence_out(record, now)

    return await run_in_threadpool(end)
