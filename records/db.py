"""Engine, sessions and the shared declarative base of the records database.

SQLite (a file URL `sqlite:///path/records.db`) is the default: every connection gets WAL, foreign keys
and a busy timeout, and every transaction starts with BEGIN IMMEDIATE, so two writers queue on the file
lock instead of one failing half-way when it upgrades a read lock. A PostgreSQL URL works unchanged.
Datetimes are UTC and timezone-aware on the Python side (`UtcDateTime`); a naive one is refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

BUSY_TIMEOUT_MS = 10_000

# Constraint names fixed by convention, so migrations and the ORM agree on them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime: stored as UTC (naive on SQLite), read back with tzinfo=UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} for a UTC column: give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """The one metadata every package's tables join (alerts now, compliance later)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


def to_url(url: str | URL | Path) -> URL:
    """A SQLAlchemy URL; a Path is a SQLite file."""
    if isinstance(url, Path):
        return URL.create("sqlite", database=str(url))
    return make_url(url)


READ_ONLY_OPTION = "roomguard_read_only"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is off: the "begin" listener below issues BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across a process crash
    finally:
        cur.close()


def make_engine(url: str | URL | Path, **kwargs: Any) -> Engine:
    """An engine for `url`: SQLite (file) with WAL, foreign_keys=ON and busy_timeout set on every
    connection, or PostgreSQL unchanged. The parent folder of a SQLite file must exist."""
    u = to_url(url)
    # JSON columns keep Chinese readable in the database (an auditor may open it with sqlite3).
    kwargs.setdefault("json_serializer", lambda obj: json.dumps(obj, ensure_ascii=False))
    engine = create_engine(u, **kwargs)
    if u.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A writer takes the write lock up front (no read-then-upgrade SQLITE_BUSY); a reader from
            # read_only(engine) begins deferred, so under WAL it never waits for, nor blocks, a writer.
            deferred = conn.get_execution_options().get(READ_ONLY_OPTION, False)
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


def read_only(engine: Engine) -> Engine:
    """`engine` for transactions that only read (SQLite: deferred BEGIN; same pool); a write in one is
    a mistake SQLite may refuse with SQLITE_BUSY under a concurrent writer."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit (expire_on_commit off)."""
    return sessionmaker(engine, expire_on_commit=False)
