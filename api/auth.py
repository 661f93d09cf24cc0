"""Who is calling: a browser session (cookie + CSRF token on every unsafe method) or an API token
(`Authorization: Bearer …`, no CSRF: a script's header cannot be forged by another site), and
`require(permission)`, the dependency that lets a request through only with a role that grants it.

CSRF is the synchronizer-token pattern (OWASP CSRF Prevention Cheat Sheet): the token is made at login,
kept with the session, given to the page, and must come back as the `X-CSRF-Token` header or the
`csrf_token` form field; SameSite=Strict on the cookie is the second line, not the only one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api import secrets as sec
from api.context import AppContext, Ctx
from api.errors import ApiError
from api.page_cache import request_versions
from api.roles import Permission, permissions, roles_with
from api.store import Credential, UserView, touch_due
from records.audit import Actor

SESSION_COOKIE = "rg_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    user: UserView
    via: Literal["session", "token"]
    session_id: str | None = None
    csrf_token: str | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        """What the caller's roles allow."""
        return permissions(self.user.roles)


def audit_actor(principal: Principal, request: Request) -> Actor:
    """Who writes, for the audit log of any write a request makes: the user name, from `api:ADDRESS`
    (a token's writes also carry the token's user: the token itself is never named)."""
    return Actor(principal.user.username, f"api:{client_address(request)}")


def client_address(request: Request) -> str:
    """The peer's address (no proxy header is trusted: the API listens directly by default)."""
    return request.client.host if request.client else "unknown"


async def _csrf_given(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def current_principal(request: Request, ctx: Ctx) -> Principal | None:
    """The caller, or None (anonymous). A bad token is a 401; an unsafe request from a session without
    the session's CSRF token is a 403 `csrf_failed`."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise ApiError(
                401, "bad_authorization", "授權標頭格式不符 Authorization must be 'Bearer <token>'", _bearer()
            )
        found = await _credential(request, ctx, "token", credential.strip())
        if found is None:
            message = "權杖無效或已撤銷 the token is unknown or revoked"
            raise ApiError(401, "token_invalid", message, _bearer())
        return Principal(found.user, "token")
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    found = await _credential(request, ctx, "session", session_id)
    view = found.session if found is not None else None
    if view is None:
        return None  # expired or ended: anonymous, so a login page can still be shown
    if request.method not in SAFE_METHODS:
        given = await _csrf_given(request)
        if given is None or not sec.same(given, view.csrf_token):
            raise ApiError(
                403,
                "csrf_failed",
                f"缺少或錯誤的 CSRF 權杖 missing or wrong CSRF token: send the {CSRF_HEADER} header "
                f"or the {CSRF_FIELD} form field given at login",
            )
    return Principal(view.user, "session", session_id, view.csrf_token)


async def _credential(
    request: Request, ctx: AppContext, kind: Literal["token", "session"], secret: str
) -> Credential | None:
    """The live token or session with this secret: from the auth memo while the audit head stays put,
    else from the database; its last use written when due (in a worker thread).

    The reads run in the event loop: indexed reads that never wait under WAL, where a worker thread
    would cost more than the read (docs/api.md, speed)."""
    now = ctx.clock()
    head = request_versions(request, ctx.store.read_engine)[0]
    key = f"{kind}:{sec.digest(secret)}"
    found = ctx.auth_memo.get(head, key)
    if found is None:
        look_up = ctx.store.look_up_token if kind == "token" else ctx.store.look_up_session
        found = look_up(secret)
        if found is None:
            return None
        ctx.auth_memo.put(head, key, found)
    if found.session is not None and found.session.expires_at <= now:
        return None
    if touch_due(found.last_use, now):
        touch = ctx.store.touch_token if kind == "token" else ctx.store.touch_session
        await run_in_threadpool(touch, secret, now)
        found = replace(found, last_use=now)
        ctx.auth_memo.put(head, key, found)
    return found


def _bearer() -> dict[str, str]:
    return {"WWW-Authenticate": "Bearer"}


def unauthenticated() -> ApiError:
    """The 401 of an anonymous caller."""
    message = "請先登入 log in first (session cookie or Bearer token)"
    return ApiError(401, "unauthenticated", message, _bearer())


MaybePrincipal = Annotated[Principal | None, Depends(current_principal)]


async def authenticated(principal: MaybePrincipal) -> Principal:
    """Any logged-in caller (401 otherwise)."""
    if principal is None:
        raise unauthenticated()
    return principal


class Requirement:
    """The dependency `require` makes; `permission` stays readable, so tests can walk every route and
    try every role against what it needs."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def refusal(self) -> str:
        """The 403's message: what is needed and which roles grant it (API and pages alike)."""
        roles = ", ".join(roles_with(self.permission))
        return f"權限不足 not allowed: {self.permission.value} needs one of the roles {roles}"

    async def __call__(self, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if self.permission not in principal.permissions:
            raise ApiError(403, "forbidden", self.refusal())
        return principal


def require(permission: Permission) -> Requirement:
    """A dependency that admits only a caller whose roles grant `permission` (401 anonymous, 403 else)."""
    return Requirement(permission)


Authenticated = Annotated[Principal, Depends(authenticated)]
