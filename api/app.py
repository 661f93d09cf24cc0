"""The app factory: `create_app(settings, records_url=…, state_dir=…, site=…)` builds the FastAPI app
with its settings, records database and clock injected, so tests build one per case."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from api import pages, pages_access, pages_door, pages_records, routes_audit, routes_auth
from api.context import AppContext, Clock, Ctx, utc_now
from api.errors import RequestIdMiddleware, install_error_handlers
from api.page_auth import install_login_redirect
from api.pages_render import install_page_errors
from api.schemas import HealthOut
from api.store import ApiStore
from records.db import make_engine, session_factory
from siteconfig.api_config import ApiConfig
from siteconfig.config import SiteConfig

OPENAPI_URL = "/api/v1/openapi.json"
# Every router of the app, in order; tests walk their routes (each role against each permission).
ROUTERS = (
    routes_auth.router,
    routes_audit.router,
    pages.router,
    pages_records.router,
    pages_access.router,
    pages_door.router,
)


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
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.ctx = AppContext(settings, store, engine, clock, site, state_dir)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    install_page_errors(app)
    install_login_redirect(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/healthz", response_model=HealthOut, tags=["health"], responses={503: {"model": HealthOut}})
    async def healthz(ctx: Ctx) -> HealthOut | JSONResponse:
        """Liveness for a load balancer or monitor; no login. 健康檢查。"""
        if await run_in_threadpool(_database_ok, ctx.engine):
            return HealthOut(status="ok", database="ok")
        return JSONResponse(HealthOut(status="degraded", database="down").model_dump(), status_code=503)

    return app
