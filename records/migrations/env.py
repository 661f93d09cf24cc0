"""Alembic environment of the records database: run by records.migrate with the engine it was given.

`target_metadata` is the shared `records.db.Base.metadata` with whatever model modules the caller has
imported (autogenerate: import alerts.store first, then pass `attributes["target_metadata"]`).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Engine

from records.db import Base, UtcDateTime, make_engine

config = context.config
target_metadata = config.attributes.get("target_metadata", Base.metadata)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes plain SQLAlchemy types: a migration never imports the models' code."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    own = engine is None
    if engine is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                render_item=render_item,
                render_as_batch=connection.dialect.name == "sqlite",  # ALTER on SQLite: copy-and-move
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if own:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("records migrations run online only (records.migrate.upgrade)")
run_migrations_online()
