"""Access rights and the quarterly access review (CC-16000 (一)(十三)): holders, grants with their flags,
and the review's start, decisions, sign-off and export, through the same compliance.access.service
functions as `roomguard access SITE review …`.

A web user signs and decides as `reviewer_name(user)` ("display name (username)"); the separation of
duties compares both the username and the display name with the review's implementers (the access
administrator). Refusals: 404 unknown review or grant, 422 invalid decision or quarter, 409 anything the
workflow refuses (separation of duties, a signed review, undecided lines, an open review).
"""

from __future__ import annotations

import tempfile
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, audit_actor, require
from api.context import AppContext, Ctx
from api.errors import ApiError, ErrorBody
from api.roles import Permission
from api.store import UserView
from compliance.access.export import SHEETS, mask_credential
from compliance.access.flags import Flag, FlagCode
from compliance.access.model import Grant, Holder, HolderType
from compliance.access.review import (
    CHANGE_ZH,
    DECISION_ZH,
    ChangeType,
    Decision,
    InvalidDecision,
    NotInReview,
    Quarter,
    Review,
    ReviewLine,
    ReviewRefused,
    ReviewSigned,
    SeparationOfDuties,
)
from compliance.access.service import (
    current_flags,
    decide_grants,
    export_review,
    flag_rules,
    progress,
    quarter_of,
    sign_off_review,
    start_review,
)
from compliance.access.store import AccessStore
from records.db import session_factory
from siteconfig.config import SiteConfig

router = APIRouter(tags=["access"])
Reader = Annotated[Principal, Depends(require(Permission.ACCESS_READ))]
Decider = Annotated[Principal, Depends(require(Permission.ACCESS_DECIDE))]
Signer = Annotated[Principal, Depends(require(Permission.ACCESS_SIGN_OFF))]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not logged in."},
    403: {"model": ErrorBody, "description": "The role lacks the access.* permission (or a CSRF failure)."},
    404: {"model": ErrorBody, "description": "No such review, or the grant is not in it."},
    422: {"model": ErrorBody, "description": "Invalid request, decision, flag or quarter."},
    503: {"model": ErrorBody, "description": "The app runs without a site configuration."},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    400: {"model": ErrorBody, "description": "A body that is not JSON."},
    409: {
        "model": ErrorBody,
        "description": "Refused by the review workflow (separation of duties, signed).",
    },
}
ExportFormat = Literal["xlsx", "csv", "pdf"]
Sheet = Literal["A_cover", "B_summary", "C_detail", "D_exceptions", "E_change_log", "F_reconciliation"]
assert set(SHEETS) == set(typing.get_args(Sheet))  # the export's tables, one CSV each
MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
T = TypeVar("T")


# -- models


class HolderOut(BaseModel):
    """A person with (or once with) machine-room access."""

    person_id: str
    name: str
    holder_type: HolderType
    org_unit: str
    left_at: datetime | None = Field(description="Employment or contract ended (HR).")


class FlagOut(BaseModel):
    """One flag of a grant: why, in zh-TW and English, with its evidence."""

    code: FlagCode
    grant_id: str
    person_id: str
    reason_zh: str
    reason_en: str
    evidence: list[str]


class GrantOut(BaseModel):
    """An access grant; the credential masked but for its last 4 characters (as the export does)."""

    grant_id: str
    person_id: str
    holder_name: str | None = Field(description="null: the holder is in neither HR nor the vendor list.")
    credential: str = Field(description="Masked: '****1234'.")
    zones: list[str]
    schedule: str
    valid_from: datetime
    valid_to: datetime | None
    requester: str
    approver: str
    implementer: str
    ticket: str
    work_order: str


class FlaggedGrantOut(GrantOut):
    """A grant now: in force or not, and its flags (DORMANT_90D is the stale one)."""

    in_force: bool
    flags: list[FlagOut]


class SignOffOut(BaseModel):
    """Who signed the review off, when, in which role."""

    by: str
    at: datetime
    role: str
    note: str


class ReviewSummary(BaseModel):
    """A review with its progress and sign-off."""

    review_id: str
    site_id: str
    quarter: str
    status: Literal["open", "signed"]
    period_start: datetime
    period_end: datetime
    snapshot_at: datetime
    prepared_by: str
    previous_review_id: str | None
    supersedes: str | None
    lines: int
    decided: int
    undecided: int
    flagged: int
    flagged_undecided: int
    sign_offs: list[SignOffOut]


class LineOut(BaseModel):
    """One reviewed grant: flags, use in the period, change since the last review, decision."""

    row_no: int
    grant: GrantOut
    holder_type: HolderType | None
    flags: list[FlagOut]
    last_used_at: datetime | None
    entries_in_period: int
    change_type: ChangeType
    change_zh: str
    before: str
    decision: Decision | None
    decision_zh: str | None
    reason: str
    decided_by: str
    decided_at: datetime | None


class ReviewOut(ReviewSummary):
    """A review with its lines (all, or those the query chose) and the grants removed since the last one."""

    shown: list[LineOut]
    removed: list[GrantOut]


class StartReviewIn(BaseModel):
    """Start a quarter's review (`review start`)."""

    quarter: str | None = Field(
        None,
        max_length=16,
        pattern=r"^\s*[12]\d{3}\s*-?\s*[Qq][1-4]\s*$",
        description="YEARQn, e.g. 2026Q4; default: the quarter now in the site's time zone.",
    )


class DecisionIn(BaseModel):
    """A decision on one grant (`review decide`): anything but keep needs a reason."""

    decision: Decision
    reason: str = Field("", max_length=2000)


class DecisionOut(BaseModel):
    """The decision as recorded, and how many lines are still undecided."""

    review_id: str
    grant_id: str
    decision: Decision
    reason: str
    decided_by: str
    decided_at: datetime | None
    undecided: int


class SignOffIn(BaseModel):
    """Sign a review off (`review sign-off`); then it is read-only."""

    note: str = Field("", max_length=2000)


# -- who the web user is in a review


def reviewer_name(user: UserView) -> str:
    """The name a web user decides and signs with: 'display name (username)', or the username alone."""
    display = user.display_name.strip()
    if display and display.casefold() != user.username.casefold():
        return f"{display} ({user.username})"
    return user.username


def reviewer_aliases(user: UserView) -> tuple[str, ...]:
    """Every name of the user the separation of duties compares with the grants' implementers."""
    return tuple(n for n in (user.username, user.display_name) if n.strip())


# -- helpers


def _store(ctx: AppContext) -> AccessStore:
    return AccessStore(session_factory(ctx.engine))


def _site(ctx: AppContext) -> SiteConfig:
    if ctx.site is None:
        raise ApiError(
            503, "no_site", "未設定站台 the API runs without a site configuration (roomguard api SITE)"
        )
    return ctx.site


def refusal(exc: ReviewRefused) -> ApiError:
    """The API error of a refused access action (the message is compliance.access's, zh-TW and English)."""
    message = str(exc)
    if isinstance(exc, NotInReview):
        return ApiError(404, "not_found", message)
    if isinstance(exc, InvalidDecision):
        return ApiError(422, "invalid_decision", message)
    if isinstance(exc, SeparationOfDuties):
        return ApiError(409, "separation_of_duties", message)
    if isinstance(exc, ReviewSigned):
        return ApiError(409, "review_signed", message)
    return ApiError(409, "refused", message)


async def _run(work: Callable[[], T]) -> T:
    """Blocking store work off the event loop; a workflow refusal becomes its API error."""
    try:
        return await run_in_threadpool(work)
    except ReviewRefused as exc:
        raise refusal(exc) from None


def _flag(f: Flag) -> FlagOut:
    return FlagOut(
        code=f.code,
        grant_id=f.grant_id,
        person_id=f.person_id,
        reason_zh=f.reason_zh,
        reason_en=f.reason_en,
        evidence=list(f.evidence),
    )


def _grant_fields(g: Grant, holder: Holder | None) -> dict[str, Any]:
    return {
        "grant_id": g.grant_id,
        "person_id": g.person_id,
        "holder_name": None if holder is None else holder.name,
        "credential": mask_credential(g.credential_id),
        "zones": list(g.zones),
        "schedule": g.schedule.text,
        "valid_from": g.valid_from,
        "valid_to": g.valid_to,
        "requester": g.requester,
        "approver": g.approver,
        "implementer": g.implementer,
        "ticket": g.ticket,
        "work_order": g.work_order,
    }


def _summary_fields(review: Review) -> dict[str, Any]:
    done = progress(review)
    return {
        "review_id": review.review_id,
        "site_id": review.site_id,
        "quarter": review.quarter,
        "status": review.status,
        "period_start": review.period_start,
        "period_end": review.period_end,
        "snapshot_at": review.snapshot_at,
        "prepared_by": review.prepared_by,
        "previous_review_id": review.previous_review_id,
        "supersedes": review.supersedes,
        "lines": done.lines,
        "decided": done.decided,
        "undecided": done.undecided,
        "flagged": done.flagged,
        "flagged_undecided": done.flagged_undecided,
        "sign_offs": [SignOffOut(by=s.by, at=s.at, role=s.role, note=s.note) for s in review.sign_offs],
    }


def summary(review: Review) -> ReviewSummary:
    """A review's summary model."""
    return ReviewSummary(**_summary_fields(review))


def _line(ln: ReviewLine) -> LineOut:
    return LineOut(
        row_no=ln.row_no,
        grant=GrantOut(**_grant_fields(ln.grant, ln.holder)),
        holder_type=None if ln.holder is None else ln.holder.holder_type,
        flags=[_flag(f) for f in ln.flags],
        last_used_at=ln.last_used_at,
        entries_in_period=ln.entries_in_period,
        change_type=ln.change_type,
        change_zh=CHANGE_ZH[ln.change_type],
        before=ln.before,
        decision=ln.decision,
        decision_zh=None if ln.decision is None else DECISION_ZH[ln.decision],
        reason=ln.reason,
        decided_by=ln.decided_by,
        decided_at=ln.decided_at,
    )


def review_out(review: Review, *, flagged: bool = False, undecided: bool = False) -> ReviewOut:
    """The review's page model: every line, or only the flagged and/or undecided ones."""
    shown = [
        _line(ln)
        for ln in review.lines
        if not (flagged and not ln.flags) and not (undecided and ln.decision is not None)
    ]
    removed = [GrantOut(**_grant_fields(g, None)) for g in review.removed]
    return ReviewOut(**_summary_fields(review), shown=shown, removed=removed)


def review_view(
    ctx: AppContext, review_id: str, *, flagged: bool = False, undecided: bool = False
) -> ReviewOut:
    """One review as the web shows it (blocking: call it in a thread pool); ApiError 404 if unknown.

    The status page renders this; `GET /api/v1/access/reviews/{review_id}` answers it.
    """
    try:
        review = _store(ctx).review(review_id)
    except ReviewRefused as exc:
        raise refusal(exc) from None
    return review_out(review, flagged=flagged, undecided=undecided)


# -- routes


@router.get("/api/v1/access/holders", response_model=list[HolderOut], responses=ERRORS)
async def access_holders(_: Reader, ctx: Ctx) -> list[HolderOut]:
    """Everyone who holds or held machine-room access (personal data: approver, auditor). 門禁人員。"""

    def work() -> list[HolderOut]:
        holders = sorted(_store(ctx).holders().values(), key=lambda h: h.person_id)
        return [
            HolderOut(
                person_id=h.person_id,
                name=h.name,
                holder_type=h.holder_type,
                org_unit=h.org_unit,
                left_at=h.left_at,
            )
            for h in holders
        ]

    return await _run(work)


def _grants_now(
    ctx: AppContext,
) -> tuple[Sequence[Grant], dict[str, Holder], dict[str, list[Flag]], datetime]:
    site = _site(ctx)
    store, now = _store(ctx), ctx.clock()
    found = current_flags(store, now, ZoneInfo(site.site.timezone), flag_rules(site.compliance.access))
    return store.grants(), store.holders(), found, now


@router.get("/api/v1/access/grants", response_model=list[FlaggedGrantOut], responses=ERRORS)
async def access_grants(
    _: Reader,
    ctx: Ctx,
    person: Annotated[str | None, Query(max_length=200, description="Only this person's grants.")] = None,
    flagged: Annotated[bool, Query(description="Only grants with a flag.")] = False,
) -> list[FlaggedGrantOut]:
    """Every grant with its flags now (as `roomguard access SITE flags`). 門禁權限與異常旗標。"""

    def work() -> list[FlaggedGrantOut]:
        grants, holders, found, now = _grants_now(ctx)
        out = []
        for g in grants:
            flags = found.get(g.grant_id, [])
            if (person is not None and g.person_id != person) or (flagged and not flags):
                continue
            fields = _grant_fields(g, holders.get(g.person_id))
            out.append(FlaggedGrantOut(**fields, in_force=g.valid_at(now), flags=[_flag(f) for f in flags]))
        return out

    return await _run(work)


@router.get("/api/v1/access/flags", response_model=list[FlagOut], responses=ERRORS)
async def access_flags(
    _: Reader,
    ctx: Ctx,
    person: Annotated[str | None, Query(max_length=200, description="Only this person's flags.")] = None,
    code: Annotated[FlagCode | None, Query(description="Only this flag.")] = None,
) -> list[FlagOut]:
    """Every flag now with its evidence (`roomguard access SITE flags --json`). 權限異常旗標。"""

    def work() -> list[FlagOut]:
        _, _, found, _ = _grants_now(ctx)
        chosen = [
            f
            for fl in found.values()
            for f in fl
            if (person is None or f.person_id == person) and (code is None or f.code == code)
        ]
        return [_flag(f) for f in sorted(chosen, key=lambda f: (f.person_id, f.grant_id, f.code))]

    return await _run(work)


@router.get("/api/v1/access/reviews", response_model=list[ReviewSummary], responses=ERRORS)
async def access_reviews(
    _: Reader,
    ctx: Ctx,
    quarter: Annotated[
        str | None, Query(max_length=16, description="Only this quarter, e.g. 2026Q4.")
    ] = None,
) -> list[ReviewSummary]:
    """Every review, oldest first, with its progress and sign-off. 權限覆核清單。"""
    return await _run(lambda: [summary(r) for r in _store(ctx).reviews(quarter)])


@router.post("/api/v1/access/reviews", status_code=201, response_model=ReviewSummary, responses=WRITE_ERRORS)
async def access_review_start(
    principal: Decider, ctx: Ctx, request: Request, body: StartReviewIn | None = None
) -> ReviewSummary:
    """Start the quarter's review (`review start`): every grant with its flags, compared with the last
    signed one. 建立覆核。"""
    actor = audit_actor(principal, request)

    def work() -> ReviewSummary:
        site = _site(ctx)
        tz, now = ZoneInfo(site.site.timezone), ctx.clock()
        quarter = (body.quarter if body else None) or quarter_of(now, tz)
        try:
            Quarter.parse(quarter, tz)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"季度格式不符 {exc}") from None
        rules = flag_rules(site.compliance.access)
        by = reviewer_name(principal.user)
        return summary(start_review(_store(ctx), site.site.id, quarter, by, actor, now, tz, rules))

    return await _run(work)


@router.get("/api/v1/access/reviews/{review_id}", response_model=ReviewOut, responses=ERRORS)
async def access_review(
    _: Reader,
    ctx: Ctx,
    review_id: str,
    flagged: Annotated[bool, Query(description="Only the flagged lines.")] = False,
    undecided: Annotated[bool, Query(description="Only the lines not decided yet.")] = False,
) -> ReviewOut:
    """A review: lines with flags and decisions, the undecided count, the sign-off (`review show`).
    檢視覆核。"""
    return await _run(lambda: review_view(ctx, review_id, flagged=flagged, undecided=undecided))


@router.post(
    "/api/v1/access/reviews/{review_id}/lines/{grant_id}/decision",
    response_model=DecisionOut,
    responses=WRITE_ERRORS,
)
async def access_review_decide(
    principal: Decider, ctx: Ctx, request: Request, review_id: str, grant_id: str, body: DecisionIn
) -> DecisionOut:
    """Decide one grant of an open review (`review decide`), audited with the line before and after.
    覆核決定。"""
    actor = audit_actor(principal, request)
    by = reviewer_name(principal.user)

    def work() -> DecisionOut:
        store = _store(ctx)
        decide_grants(store, review_id, [grant_id], body.decision, body.reason, by, actor, ctx.clock())
        review = store.review(review_id)
        line = review.line(grant_id)
        assert line.decision is not None  # just decided
        return DecisionOut(
            review_id=review_id,
            grant_id=grant_id,
            decision=line.decision,
            reason=line.reason,
            decided_by=line.decided_by,
            decided_at=line.decided_at,
            undecided=progress(review).undecided,
        )

    return await _run(work)


@router.post(
    "/api/v1/access/reviews/{review_id}/sign-off", response_model=ReviewSummary, responses=WRITE_ERRORS
)
async def access_review_sign_off(
    principal: Signer, ctx: Ctx, request: Request, review_id: str, body: SignOffIn | None = None
) -> ReviewSummary:
    """Sign the review off (`review sign-off`): every line decided, and not by an implementer of its grants
    (separation of duties: 409); then it is read-only. 簽核。"""
    actor = audit_actor(principal, request)
    user = principal.user
    note = body.note if body else ""

    def work() -> ReviewSummary:
        signed = sign_off_review(
            _store(ctx), review_id, reviewer_name(user), actor, ctx.clock(), note, reviewer_aliases(user)
        )
        return summary(signed)

    return await _run(work)


@router.get(
    "/api/v1/access/reviews/{review_id}/export",
    response_class=Response,
    responses={
        **ERRORS,
        200: {
            "description": "The file: XLSX (sheets A-F), one sheet as CSV (UTF-8 with BOM), or the PDF.",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA.values()
            },
        },
    },
)
async def access_review_export(
    _: Reader,
    ctx: Ctx,
    review_id: str,
    format: Annotated[ExportFormat, Query(description="xlsx, csv or pdf.")] = "xlsx",
    sheet: Annotated[Sheet, Query(description="The sheet a CSV holds.")] = "C_detail",
) -> Response:
    """The auditor's file of a review (`review export`): XLSX, one sheet as CSV, or PDF. 匯出覆核報告。"""

    def work() -> tuple[bytes, str]:
        site = _site(ctx)
        with tempfile.TemporaryDirectory(prefix="roomguard-access-") as tmp:
            files = export_review(
                _store(ctx),
                review_id,
                Path(tmp) / "export",
                site_name=site.site.name,
                company=site.site.name,
                tz=ZoneInfo(site.site.timezone),
            )
            wanted = f"{sheet}.csv" if format == "csv" else f".{format}"
            path = next(f for f in files if f.name.endswith(wanted))
            name = f"access-review-{review_id}-{sheet}.csv" if format == "csv" else path.name
            return path.read_bytes(), name

    content, name = await _run(work)
    return Response(
        content,
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
