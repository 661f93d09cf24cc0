"""Bring a records database to the newest schema with Alembic, configured in code (no alembic.ini).

The migrations ship inside the package (`records/migrations`); `upgrade(url)` runs them to head in one
transaction and is a no-op on a database that is already there.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from records.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic Config pointing at the shipped migrations; with `engine`, env.py uses it."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def _engine(url: str | URL | Path | Engine) -> tuple[Engine, bool]:
    if isinstance(url, Engine):
        return url, False
    return make_engine(url), True


def upgrade(url: str | URL | Path | Engine, revision: str = "head") -> None:
    """Run the migrations up to `revision` (default the newest)."""
    engine, own = _engine(url)
    try:
        command.upgrade(alembic_config(engine), revision)
    finally:
        if own:
            engine.dispose()


def current(url: str | URL | Path | Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    engine, own = _engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if own:
            engine.dispose()


def head() -> str | None:
    """The newest revision shipped."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
