"""Access reviews in the browser: the list, one review with a decide form per line (access.decide) and
the sign-off form (access.sign_off); the workflow's refusals (compliance.access.review.ReviewRefused,
separation of duties among them) come back as the page with the reason and HTTP 409."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api import pages_data as data
from api.auth import Principal, audit_actor
from api.compliance_support import site_tz
from api.context import AppContext, Ctx
from api.i18n import request_lang, translate
from api.page_auth import page_require
from api.pages_render import PageError, flash, local_time, render
from api.roles import Permission
from api.routes_access import reviewer_aliases, reviewer_name
from compliance.access.review import DECISIONS, Review, ReviewRefused, SeparationOfDuties
from compliance.access.service import decide_grants, sign_off_review

router = APIRouter(include_in_schema=False)

Reader = Annotated[Principal, Depends(page_require(Permission.ACCESS_READ))]
Decider = Annotated[Principal, Depends(page_require(Permission.ACCESS_DECIDE))]
Signer = Annotated[Principal, Depends(page_require(Permission.ACCESS_SIGN_OFF))]


@router.get("/access/reviews")
async def reviews(request: Request, principal: Reader, ctx: Ctx) -> Response:
    """Every review, newest quarter first."""
    found = await run_in_threadpool(data.access_store(ctx.engine).reviews)
    rows = sorted(found, key=lambda r: (r.quarter, r.review_id), reverse=True)
    context = {"reviews": rows, "user": principal.user, "csrf_token": principal.csrf_token or ""}
    return render(request, "reviews.html", context)


def _load(ctx: AppContext, review_id: str) -> Review:
    try:
        return data.access_store(ctx.engine).review(review_id)
    except ReviewRefused:
        raise PageError(404, "err.not_found", f"無此覆核 no review {review_id!r}") from None


async def review_page(
    request: Request,
    principal: Principal,
    ctx: AppContext,
    review_id: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """One review: lines, decisions, sign-offs, and the forms the caller's roles allow."""
    review = await run_in_threadpool(_load, ctx, review_id)
    request.state.page_path = f"/access/reviews/{review_id}"
    tz = site_tz(ctx)
    context: dict[str, Any] = {
        "review": review,
        "decided": sum(1 for ln in review.lines if ln.decision),
        "decisions": DECISIONS,
        "can_decide": Permission.ACCESS_DECIDE in principal.permissions and review.status == "open",
        "can_sign": Permission.ACCESS_SIGN_OFF in principal.permissions and review.status == "open",
        "csrf_token": principal.csrf_token or "",
        "user": principal.user,
        "error": error,
        "flash": flash(request),
        "local": lambda at: local_time(at, tz),
    }
    return render(request, "review.html", context, status)


@router.get("/access/reviews/{review_id}")
async def review(review_id: str, request: Request, principal: Reader, ctx: Ctx) -> Response:
    """One review."""
    return await review_page(request, principal, ctx, review_id)


def _refusal(request: Request, refused: ReviewRefused) -> str:
    """The refusal's own text (zh-TW and English), led by a plain separation-of-duties sentence in the
    page's language when that is the cause."""
    if isinstance(refused, SeparationOfDuties):
        return f"{translate(request_lang(request), 'sod')} ({refused})"
    return str(refused)


@router.post("/access/reviews/{review_id}/decide")
async def decide(
    review_id: str,
    request: Request,
    principal: Decider,
    ctx: Ctx,
    grant_id: Annotated[str, Form(max_length=200)],
    decision: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Record a decision on one line (audited, refusals too), as `roomguard access review decide`."""
    store = data.access_store(ctx.engine)
    by = reviewer_name(principal.user)
    actor = audit_actor(principal, request)
    try:
        await run_in_threadpool(
            decide_grants, store, review_id, [grant_id], decision, reason, by, actor, ctx.clock()
        )
    except ReviewRefused as refused:
        return await review_page(request, principal, ctx, review_id, _refusal(request, refused), 409)
    return RedirectResponse(f"/access/reviews/{review_id}?msg=flash.decided#line-{grant_id}", status_code=303)


@router.post("/access/reviews/{review_id}/sign-off")
async def sign_off(
    review_id: str,
    request: Request,
    principal: Signer,
    ctx: Ctx,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Sign the review off (then it is read-only), as `roomguard access review sign-off`; separation of
    duties (the user's name or display name implemented a grant) is the workflow's to refuse."""
    store = data.access_store(ctx.engine)
    user = principal.user
    actor = audit_actor(principal, request)
    try:
        await run_in_threadpool(
            sign_off_review, store, review_id, reviewer_name(user), actor, ctx.clock(), note,
            reviewer_aliases(user),
        )  # fmt: skip
    except ReviewRefused as refused:
        return await review_page(request, principal, ctx, review_id, _refusal(request, refused), 409)
    return RedirectResponse(f"/access/reviews/{review_id}?msg=flash.signed", status_code=303)
