"""Logging in and out (JSON for scripts and pages, a form for the browser), the caller, the users."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import (
    SESSION_COOKIE,
    Authenticated,
    MaybePrincipal,
    Principal,
    audit_actor,
    client_address,
    require,
)
from api.context import AppContext, Ctx
from api.errors import ApiError, ErrorBody
from api.login_guard import LOGIN_CSRF_COOKIE, LOGIN_CSRF_FIELD, LoginGuard, login_guard
from api.pages_render import TEMPLATES
from api.roles import Permission
from api.schemas import LoginOut, LoginRequest, MeOut, PasswordChange, UserOut
from api.store import LoginResult, UserError

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not logged in, or a bad token."},
    403: {
        "model": ErrorBody,
        "description": "Not allowed for the roles, no CSRF token, or a token where a session is needed.",
    },
    422: {"model": ErrorBody, "description": "Invalid request."},
}

log = logging.getLogger(__name__)
router = APIRouter()


async def _login(ctx: AppContext, request: Request, username: str, password: str) -> LoginResult:
    """Check the password, unless the caller's address is throttled (429 `too_many_attempts`); every
    refusal counts against the address (api.login.address_failures in a sliding window)."""
    address = client_address(request)
    throttle = login_guard(request).addresses
    wait = throttle.retry_after(address, ctx.clock())
    if wait is not None:
        seconds = math.ceil(wait)
        raise ApiError(
            429,
            "too_many_attempts",
            f"此位址登入失敗次數過多 請 {seconds} 秒後再試 too many failed logins from {address}: "
            f"try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )
    result = await run_in_threadpool(
        ctx.store.login,
        username,
        password,
        address,
        ctx.clock(),
        ctx.settings.login,
        ctx.session_lifetime,
    )
    if result.outcome != "ok" and throttle.failed(address, ctx.clock()):
        # Logged, not audited: the failed logins that led here are audited each, and a throttled flood
        # must not turn into a flood of audit writes.
        log.warning("login: %s throttled after %d failed logins", address, throttle.limit)
    return result


def _refusal(result: LoginResult, now: datetime) -> ApiError:
    """One message for an unknown user, a wrong password and a disabled account (names do not leak);
    a lock-out says until when."""
    if result.outcome == "locked" and result.locked_until is not None:
        wait = max(1, int((result.locked_until - now).total_seconds()))
        return ApiError(
            429,
            "account_locked",
            f"密碼錯誤次數過多 帳號鎖定中 too many wrong passwords: locked for {wait // 60 + 1} more minutes",
            {"Retry-After": str(wait)},
        )
    return ApiError(401, "login_failed", "帳號或密碼錯誤 wrong user name or password")


def _set_session(response: Response, ctx: AppContext, result: LoginResult) -> None:
    assert result.session_id is not None
    response.set_cookie(
        SESSION_COOKIE,
        result.session_id,
        max_age=int(ctx.session_lifetime.total_seconds()),
        path="/",
        secure=ctx.settings.secure_cookies,
        httponly=True,  # page scripts never see it
        samesite="strict",  # never sent on a request another site starts
    )


def _clear_session(response: Response, ctx: AppContext) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=ctx.settings.secure_cookies, httponly=True, samesite="strict"
    )


@router.post(
    "/api/v1/auth/login",
    response_model=LoginOut,
    responses={
        401: ERRORS[401],
        422: ERRORS[422],
        429: {"model": ErrorBody, "description": "Account locked out, or too many failed logins from here."},
    },
    tags=["auth"],
)
async def login_json(body: LoginRequest, request: Request, response: Response, ctx: Ctx) -> LoginOut:
    """Log in: sets the session cookie and returns the CSRF token. 登入。"""
    result = await _login(ctx, request, body.username, body.password)
    if result.outcome != "ok" or result.user is None:
        raise _refusal(result, ctx.clock())
    _set_session(response, ctx, result)
    assert result.csrf_token is not None
    assert result.expires_at is not None
    return LoginOut(user=UserOut.of(result.user), csrf_token=result.csrf_token, expires_at=result.expires_at)


def _local_path(target: str) -> str:
    """Only a path of this site to go to after login (never another host: an open redirect)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _login_form(
    request: Request, ctx: AppContext, next: str, username: str = "", refusal: ApiError | None = None
) -> Response:
    """The login form with its pre-session CSRF token (the browser's own if still good, else a new one)."""
    guard: LoginGuard = login_guard(request)
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not guard.signed(token):
        token = guard.new_form_token()
    context = {
        "next": _local_path(next),
        "username": username,
        "error": refusal.message if refusal else None,
        "login_csrf": token,
    }
    response = TEMPLATES.TemplateResponse(
        request,
        "login.html",
        context,
        status_code=refusal.status if refusal else 200,
        headers=refusal.headers if refusal else None,
    )
    assert token is not None
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/login",
        secure=ctx.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page(request: Request, ctx: Ctx, next: str = "/") -> Response:
    """The browser's login form (sets the login form's CSRF cookie)."""
    return _login_form(request, ctx, next)


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "/",
    login_csrf: Annotated[str, Form(alias=LOGIN_CSRF_FIELD, max_length=200)] = "",
) -> Response:
    """The browser's login: a session cookie and a redirect (303), or the form again with the reason.
    Refused (403) without the login form's CSRF token, so another site cannot log a browser in."""
    if not login_guard(request).form_token_ok(request.cookies.get(LOGIN_CSRF_COOKIE), login_csrf):
        refusal = ApiError(
            403,
            "login_csrf_failed",
            "登入表單已過期或非本站送出 請重新整理後再登入 the login form expired or did not come from "
            "this site: reload the page and log in again",
        )
        return _login_form(request, ctx, next, username, refusal)
    try:
        result = await _login(ctx, request, username, password)
    except ApiError as throttled:
        return _login_form(request, ctx, next, username, throttled)
    if result.outcome != "ok":
        return _login_form(request, ctx, next, username, _refusal(result, ctx.clock()))
    response = RedirectResponse(_local_path(next), status_code=303)
    _set_session(response, ctx, result)
    secure = ctx.settings.secure_cookies
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", secure=secure, httponly=True)
    return response


async def _logout(principal: Principal, request: Request, ctx: AppContext) -> None:
    if principal.via != "session" or principal.session_id is None:
        raise ApiError(400, "not_a_session", "權杖無須登出 a token is revoked, not logged out")
    await run_in_threadpool(ctx.store.logout, principal.session_id, client_address(request), ctx.clock())


@router.post("/api/v1/auth/logout", status_code=204, responses=ERRORS, tags=["auth"])
async def logout_json(principal: Authenticated, request: Request, ctx: Ctx) -> Response:
    """End the session (CSRF token required). 登出。"""
    await _logout(principal, request, ctx)
    response = Response(status_code=204)
    _clear_session(response, ctx)
    return response


@router.post("/logout", include_in_schema=False)
async def logout_form(principal: MaybePrincipal, request: Request, ctx: Ctx) -> Response:
    """The browser's logout (the form carries the CSRF token); back to the login form."""
    if principal is not None:
        await _logout(principal, request, ctx)
    response = RedirectResponse("/login", status_code=303)
    _clear_session(response, ctx)
    return response


@router.get("/api/v1/me", response_model=MeOut, responses=ERRORS, tags=["auth"])
async def me(principal: Authenticated) -> MeOut:
    """The caller: user, roles, permissions (and the session's CSRF token). 目前使用者。"""
    return MeOut(
        user=UserOut.of(principal.user),
        via=principal.via,
        permissions=sorted(p.value for p in principal.permissions),
        csrf_token=principal.csrf_token,
    )


@router.post(
    "/api/v1/me/password",
    status_code=204,
    responses={**ERRORS, 429: {"model": ErrorBody, "description": "Locked out."}},
    tags=["auth"],
)
async def change_password(
    body: PasswordChange, principal: Authenticated, request: Request, ctx: Ctx
) -> Response:
    """Change one's own password from a browser session (with its CSRF token): the current one first;
    the user's other sessions end. Not with an API token: a leaked token must not become a way to guess
    the password or lock the account out. 變更自己的密碼 (僅限瀏覽器登入)。"""
    if principal.via != "session":
        raise ApiError(
            403,
            "session_required",
            "請從瀏覽器登入後變更密碼 change a password from a logged-in browser session, not a token",
        )
    name = principal.user.username
    check = await run_in_threadpool(
        ctx.store.check_own_password,
        name,
        body.current_password,
        client_address(request),
        ctx.clock(),
        ctx.settings.login,
    )
    if check.outcome != "ok":
        if check.outcome == "locked":
            raise _refusal(check, ctx.clock())
        raise ApiError(403, "wrong_password", "目前密碼錯誤 the current password is wrong")
    try:
        await run_in_threadpool(
            ctx.store.set_password,
            name,
            body.new_password,
            audit_actor(principal, request),
            ctx.clock(),
            principal.session_id,
        )
    except UserError as exc:
        raise ApiError(422, "password_rules", str(exc)) from None
    return Response(status_code=204)


@router.get("/api/v1/users", response_model=list[UserOut], responses=ERRORS, tags=["users"])
async def users(_: Annotated[Principal, Depends(require(Permission.USERS_READ))], ctx: Ctx) -> list[UserOut]:
    """Every user (admin). 使用者清單。"""
    return [UserOut.of(u) for u in await run_in_threadpool(ctx.store.list_users)]
