"""The app factory: `create_app(settings, records_url=…, state_dir=…, site=…)` builds the FastAPI app
with its settings, records database and clock injected, so tests build one per case."""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from api import (
    pages,
    pages_access,
    pages_alerts,
    pages_audit,
    pages_door,
    pages_records,
    routes_access,
    routes_alerts,
    routes_audit,
    routes_auth,
    routes_board,
    routes_evidence,
    routes_records,
    routes_status,
)
from api.context import AppContext, Clock, Ctx, utc_now
from api.errors import ErrorBody, RequestIdMiddleware, install_error_handlers
from api.live import MqttLive
from api.live_model import LiveSource
from api.login_guard import LoginGuard
from api.metrics import install_metrics, registry_for
from api.page_auth import install_login_redirect
from api.pages_render import install_page_errors
from api.schemas import HealthOut
from api.store import ApiStore
from records.db import make_engine, session_factory
from siteconfig.api_config import ApiConfig
from siteconfig.config import SiteConfig

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
DOCS_ASSETS_URL = "/api/v1/docs/assets"
DOCS_ASSETS = importlib.resources.files("fastapi_offline") / "static"
# Swagger UI's method badges, version stamp and links are too pale for white text or a white page (WCAG
# 1.4.3, 4.5:1; axe-core color-contrast): the same hues, darker.
DOCS_CONTRAST_CSS = " ".join(
    f".swagger-ui .opblock.opblock-{method} .opblock-summary-method{{background:{colour}}}"
    for method, colour in {
        "get": "#0b5cad",
        "post": "#17794a",
        "put": "#8a5300",
        "delete": "#b3261e",
        "patch": "#0f6e66",
        "head": "#6b21a8",
        "options": "#0d5aa7",
    }.items()
) + (
    " .swagger-ui .info .title small.version-stamp{background:#2b6b12}"
    " .swagger-ui .info .title small pre{color:#fff}"
    " .swagger-ui .info a, .swagger-ui .info .url{color:#1f5fa8}"
    " .swagger-ui .json-schema-2020-12-expand-deep-button{color:#595959}"
)
# Every router of the app, in order; tests walk their routes (each role against each permission). A request
# is matched against the routes in this order: the status page first (every screen in the room refreshes
# it), then the API (its OpenAPI lists paths in this order); the paths do not overlap.
ROUTERS = (
    pages.router,
    routes_auth.router,
    routes_audit.router,
    routes_status.router,
    routes_alerts.router,
    routes_records.router,
    routes_board.router,
    routes_evidence.router,
    routes_access.router,
    pages_records.router,
    pages_alerts.router,
    pages_access.router,
    pages_audit.router,
    pages_door.router,
)
# (/metrics is not here: each app adds it, anonymous or not as `api.metrics_public` says.)
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
    live: LiveSource | None = None,
) -> FastAPI:
    """The roomguard web app over a migrated records database (`records.migrate.upgrade` first).

    `live` is where readings, statuses and check results come from; with a `site` and no `live` the app
    subscribes to the site's broker itself (api/live.py) while it runs (its lifespan)."""
    engine = records_url if isinstance(records_url, Engine) else make_engine(records_url)
    store = ApiStore(session_factory(engine), settings.passwords, hasher)
    subscriber = MqttLive(site, clock=clock) if live is None and site is not None else None
    source = live if live is not None else subscriber

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if subscriber is not None:
            subscriber.start()
        try:
            yield
        finally:
            if subscriber is not None:
                await subscriber.stop()

    app = FastAPI(
        title="roomguard",
        summary="Machine-room monitoring and TWSE CC-16000 evidence. 機房環境監控與 CC-16000 稽核佐證。",
        version="1",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # served below, with the page's language declared
        redoc_url=None,
        lifespan=lifespan,
    )
    ctx = AppContext(settings, store, engine, clock, site, state_dir)
    app.state.ctx = ctx
    app.state.live = source
    app.state.login_guard = LoginGuard(settings.login)
    app.state.metrics_registry = registry_for(ctx, source)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    install_page_errors(app)
    install_login_redirect(app)
    for router in ROUTERS:
        app.include_router(router, responses=COMMON_RESPONSES)
    install_metrics(app, settings.metrics_public)

    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI over the OpenAPI with its script and style from the box itself (fastapi-offline's
        copy of swagger-ui 5: no CDN, which an edge box may not reach), and `<html lang="en">` (WCAG
        3.1.1: screen readers pick the language from it; axe-core's html-has-lang)."""
        page = get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title="roomguard API",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            # Deep links put a link inside each operation's button (axe-core: nested-interactive).
            swagger_ui_parameters={"deepLinking": False},
        )
        html = bytes(page.body).decode().replace("<html>", '<html lang="en">', 1)
        return HTMLResponse(html.replace("</head>", f"<style>{DOCS_CONTRAST_CSS}</style></head>", 1))

    @app.get("/healthz", response_model=HealthOut, tags=["health"], responses={503: {"model": HealthOut}})
    async def healthz(ctx: Ctx) -> HealthOut | JSONResponse:
        """Liveness for a load balancer or monitor; no login. 健康檢查。"""
        if await run_in_threadpool(_database_ok, ctx.engine):
            return HealthOut(status="ok", database="ok")
        return JSONResponse(HealthOut(status="degraded", database="down").model_dump(), status_code=503)

    return app
