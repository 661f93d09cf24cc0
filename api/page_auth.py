"""Who may see a page: like `api.auth.require`, but an anonymous browser is sent to the login form
(303 to /login?next=…) instead of a 401, and a role without the permission gets a 403 page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import MaybePrincipal, Principal, Requirement
from api.pages_render import PageError
from api.roles import Permission


class LoginNeeded(Exception):
    """An anonymous request for a page: the answer is the login form, then back to `next`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


async def page_principal(request: Request, principal: MaybePrincipal) -> Principal:
    """The logged-in caller of a page; anonymous: LoginNeeded (a redirect to the login form)."""
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # After a form post the way back is the page the form was on, not the post's own path.
        raise LoginNeeded(target if request.method == "GET" else "/")
    return principal


class PageRequirement(Requirement):
    """`require` for pages (tests find `permission` on it as on Requirement)."""

    async def __call__(self, principal: Annotated[Principal, Depends(page_principal)]) -> Principal:
        if self.permission not in principal.permissions:
            raise PageError(403, "err.forbidden", self.refusal())
        return principal


def page_require(permission: Permission) -> PageRequirement:
    """A page dependency admitting only a caller whose roles grant `permission`."""
    return PageRequirement(permission)


def install_login_redirect(app: FastAPI) -> None:
    """Answer LoginNeeded with 303 to the login form."""

    async def login_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginNeeded)
        return RedirectResponse("/login?" + urlencode({"next": exc.next_path}), status_code=303)

    app.add_exception_handler(LoginNeeded, login_needed)
