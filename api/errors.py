"""Errors as `{"code", "message", "request_id"}` for API paths (a short text elsewhere), never a stack
trace; the request id is also in the `X-Request-ID` header and in the log line of an internal error."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's own request id is kept when it is short and plain (it goes into logs); else a new one.
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
API_PREFIX = "/api/"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Outside /api/ but machine-read too: their errors are JSON as well (a scraper logs the body).
JSON_ERROR_PATHS = frozenset({"/metrics"})
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


class ErrorBody(BaseModel):
    """Every API error's body."""

    code: str = Field(description="Stable machine-readable error code.")
    message: str = Field(description="Short human-readable message (zh-TW and English).")
    request_id: str = Field(description="The request's id, also in the X-Request-ID header and the log.")


class ApiError(Exception):
    """An error the API answers with: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class RequestIdMiddleware:
    """Gives every HTTP request an id (the caller's X-Request-ID if plain, else a new one) in
    `request.state.request_id` and the response header, and adds the headers every answer carries."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _GOOD_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = rid
                security_headers(headers)
                if scope.get("scheme") == "https":
                    # Browsers then refuse plain HTTP to this host for a year (RFC 6797).
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_id)


def security_headers(headers: MutableHeaders) -> None:
    """No sniffing, no framing (clickjacking), no referrer to other sites."""
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")


def request_id(request: Request) -> str:
    """The request's id (set by RequestIdMiddleware; a fresh one if it did not run)."""
    rid = getattr(request.state, "request_id", None)
    if not isinstance(rid, str):
        rid = uuid.uuid4().hex
        request.state.request_id = rid
    return rid


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The error answer: JSON on API paths, a short text elsewhere; always with the request id."""
    rid = request_id(request)
    all_headers = {REQUEST_ID_HEADER: rid, **(headers or {})}
    if request.url.path.startswith(API_PREFIX) or request.url.path in JSON_ERROR_PATHS:
        body = ErrorBody(code=code, message=message, request_id=rid).model_dump()
        return JSONResponse(body, status_code=status, headers=all_headers)
    return PlainTextResponse(f"{message}\n({code}, request {rid})\n", status_code=status, headers=all_headers)


def _validation_message(exc: RequestValidationError) -> str:
    # Location and message only: pydantic's `input` could echo a password back.
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
    return "請求格式不符 invalid request: " + "; ".join(parts)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path (a 405's Allow header, RFC 9110
    15.5.6): Starlette names only the first route that matched the path, where a path's GET and POST are
    often two routes."""
    routes = request.app.router.routes
    return [
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the one shape; an unexpected one is logged with its request id, not shown."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        headers: dict[str, Any] = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(request, exc.status_code, code, str(exc.detail), headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 422, "invalid_request", _validation_message(exc))

    async def internal(request: Request, exc: Exception) -> Response:
        rid = request_id(request)
        log.error("request %s %s %s failed", rid, request.method, request.url.path, exc_info=exc)
        message = "內部錯誤 請以請求編號查詢紀錄 internal error: the log has it by request id"
        response = error_response(request, 500, "internal_error", message)
        security_headers(response.headers)
        return response

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, internal)
