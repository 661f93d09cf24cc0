"""What every request handler reaches through `request.app.state.ctx`: settings, store, clock, site."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from api.auth_memo import AuthMemo
from api.page_cache import PageCache
from api.store import ApiStore
from siteconfig.api_config import ApiConfig
from siteconfig.config import SiteConfig

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AppContext:
    """The app's injected settings and services."""

    settings: ApiConfig
    store: ApiStore
    engine: Engine
    clock: Clock
    site: SiteConfig | None
    state_dir: Path
    page_cache: PageCache = field(default_factory=PageCache)
    auth_memo: AuthMemo = field(default_factory=AuthMemo)

    @property
    def session_lifetime(self) -> timedelta:
        """How long a browser login lasts."""
        return timedelta(hours=self.settings.session_hours)


async def context(request: Request) -> AppContext:
    """The app's context (a FastAPI dependency)."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx


Ctx = Annotated[AppContext, Depends(context)]
