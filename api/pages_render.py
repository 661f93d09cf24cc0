"""Rendering the server-side pages: the one Jinja2 environment, the language of a request (and the
`rg_lang` cookie `?lang=` sets), flash messages by catalogue key, and page errors as HTML pages."""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from api import i18n
from api.roles import Permission, permissions

# A year: the choice of language is not a secret and outlives a session.
LANG_COOKIE_AGE = 365 * 24 * 3600


def page_path(request: Request) -> str:
    """The page a request shows: its own path, or for a form post answered with a page (an error), the
    page the form was on (`request.state.page_path`), so the language link does not repeat the post."""
    given = getattr(request.state, "page_path", None)
    return given if isinstance(given, str) else request.url.path


def _page_context(request: Request) -> dict[str, Any]:
    lang = i18n.request_lang(request)
    other = "en" if lang == "zh" else "zh"
    query = {**request.query_params, "lang": other} if request.method == "GET" else {"lang": other}
    query.pop("msg", None)  # a flash message is shown once
    return {
        "lang": lang,
        "html_lang": i18n.HTML_LANG[lang],
        "t": i18n.translator(lang),
        "switch_url": f"{page_path(request)}?{urlencode(query)}",
    }


TEMPLATES = Jinja2Templates(
    directory=Path(__file__).resolve().parent / "templates", context_processors=[_page_context]
)


def may(user: Any, permission: str) -> bool:
    """Whether `user`'s roles grant `permission` (the templates' `may`: a link the role could not
    follow is left out of the menu)."""
    return Permission(permission) in permissions(user.roles)


TEMPLATES.env.globals["may"] = may


class PageError(Exception):
    """A page that cannot be shown: status, catalogue key of the title, the message (zh and en)."""

    def __init__(self, status: int, title_key: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title_key, self.message = status, title_key, message


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """The template as an HTML answer; a `?lang=` of the request is remembered in the `rg_lang` cookie."""
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    given = request.query_params.get("lang")
    if given in i18n.LANGS:
        response.set_cookie(i18n.COOKIE, given, max_age=LANG_COOKIE_AGE, path="/", samesite="lax")
    return response


def flash(request: Request) -> str | None:
    """The flash message of a redirect after a form (`?msg=KEY`, only catalogue keys: no text injection)."""
    key = request.query_params.get("msg")
    if key and key.startswith("flash.") and key in i18n.MESSAGES:
        return i18n.translate(i18n.request_lang(request), key)
    return None


def local_time(at: datetime | None, tz: tzinfo) -> str:
    """A time as the room reads it: local, to the minute ('—' for none)."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else "—"


def install_page_errors(app: FastAPI) -> None:
    """Answer a PageError with the error page in the request's language."""

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return render(request, "error.html", {"title_key": exc.title_key, "message": exc.message}, exc.status)

    app.add_exception_handler(PageError, page_error)
