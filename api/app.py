"""The app factory: `create_app(settings, records_url=…, state_dir=…, site=…)` builds the FastAPI app
with its settings, records database and clock injected, so tests build one per case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from api import routes_audit, routes_auth
from api.context import AppContext, Clock, Ctx, utc_now
from api.errors import ErrorBody, RequestIdMiddleware, install_error_handlers
from api.login_guard import LoginGuard
from api.schemas import HealthOut
from api.store import ApiStore
from records.db import make_engine, session_factory
from siteconfig.api_config import ApiConfig
from siteconfig.config import SiteConfig

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
# Every router of the app, in order; tests walk their routes (each role against each permission).
ROUTERS = (routes_auth.router, routes_audit.router)
# Answers any operation may give, declared on every route of ROUTERS (the OpenAPI must list every status
# an operation answers with; schemathesis checks it): a body that is not JSON at all is a 400, a body or
# parameter that does not fit its model a 422. A route declares its own 401/403/404/409/429.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad request: a body that does not parse, or a refused action."},
    422: {"model": ErrorBody, "description": "Invalid request: a field or parameter out of its model."},
}


def _database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure is "down" here; the reason is in the database's own log
        return False


def create_app(
    settings: ApiConfig,
    *,
    records_url: str | Path | Engine,
    state_dir: Path,
    site: SiteConfig | None = None,
    clock: Clock = utc_now,
    hasher: PasswordHasher | None = None,
) -> FastAPI:
    """The roomguard web app over a migrated records database (`records.migrate.upgrade` first)."""
    engine = records_url if isinstance(records_url, Engine) else make_engine(records_url)
    store = ApiStore(session_factory(engine), settings.passwords, hasher)
    app = FastAPI(
        title="roomguard",
        summary="Machine-room monitoring and TWSE CC-16000 evidence. 機房環境監控與 CC-16000 稽核佐證。",
        version="1",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # served below, with the page's language declared
        redoc_url=None,
    )
    app.state.ctx = AppContext(settings, store, engine, clock, site, state_dir)
    app.state.login_guard = LoginGuard(settings.login)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, responses=COMMON_RESPONSES)

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI over the OpenAPI, as FastAPI serves it but with `<html lang="en">` (WCAG 3.1.1:
        screen readers pick the language from it; axe-core's html-has-lang)."""
        page = get_swagger_ui_html(openapi_url=OPENAPI_URL, title="roomguard API")
        return HTMLResponse(bytes(page.body).decode().replace("<html>", '<html lang="en">', 1))

    @app.get("/healthz", response_model=HealthOut, tags=["health"], responses={503: {"model": HealthOut}})
    async def healthz(ctx: Ctx) -> HealthOut | JSONResponse:
        """Liveness for a load balancer or monitor; no login. 健康檢查。"""
        if await run_in_threadpool(_database_ok, ctx.engine):
            return HealthOut(status="ok", database="ok")
        return JSONResponse(HealthOut(status="degraded", database="down").model_dump(), status_code=503)

    return app
