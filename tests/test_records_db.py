"""The records database: engine settings on real SQLite files, the shipped migrations equal the ORM
models (no autogenerate diff), upgrading twice is a no-op, datetimes stay UTC and timezone-aware."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import StatementError

import alerts.store  # registers the alert tables on the shared metadata
import api.models  # noqa: F401  (the web API's users, sessions, tokens)
import compliance.access.store
import compliance.envelope_store
import compliance.store  # noqa: F401  (these register the compliance tables)
import records
import records.audit
from records.db import BUSY_TIMEOUT_MS, Base, make_engine, session_factory
from records.migrate import MIGRATIONS, current, head, upgrade

ALERT_TABLES = {"alerts", "alert_history", "silences", "engine_state", "deliveries", "delivery_attempts"}
COMPLIANCE_TABLES = {"compliance_records", "compliance_checks", "compliance_state", "audit_log", "audit_head"}
API_TABLES = {"api_users", "api_sessions", "api_tokens"}


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'records.db'}"


def test_sqlite_connections_get_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(url(tmp_path))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
    engine.dispose()


def test_a_path_is_a_sqlite_file(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "x.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    assert (tmp_path / "x.db").exists()


def test_upgrade_creates_the_tables_and_matches_the_models(tmp_path: Path) -> None:
    u = url(tmp_path)
    assert current(u) is None
    upgrade(u)
    assert current(u) == head() == "0007"
    engine = make_engine(u)
    assert set(inspect(engine).get_table_names()) >= ALERT_TABLES | COMPLIANCE_TABLES | API_TABLES
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(ctx, Base.metadata) == []
    engine.dispose()


def test_upgrading_twice_is_a_no_op(tmp_path: Path) -> None:
    u = url(tmp_path)
    upgrade(u)
    engine = make_engine(u)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO engine_state (id, state, updated_at) VALUES (1, '{}', '2026-03-01 00:00:00')"
        )
        before = conn.exec_driver_sql("SELECT sql FROM sqlite_master ORDER BY name").all()
    upgrade(u)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT sql FROM sqlite_master ORDER BY name").all() == before
        assert conn.exec_driver_sql("SELECT count(*) FROM engine_state").scalar() == 1
    engine.dispose()


def test_the_migrations_ship_inside_the_package() -> None:
    assert Path(records.__file__).parent / "migrations" == MIGRATIONS
    assert (MIGRATIONS / "env.py").exists()
    assert (MIGRATIONS / "script.py.mako").exists()
    assert (MIGRATIONS / "__init__.py").exists()
    assert (MIGRATIONS / "versions" / "__init__.py").exists()
    pyproject = (Path(records.__file__).parent.parent / "pyproject.toml").read_text()
    assert '"records.migrations" = ["script.py.mako"]' in pyproject
    assert '"records*"' in pyproject


def test_datetimes_are_utc_and_aware_both_ways(tmp_path: Path) -> None:
    u = url(tmp_path)
    upgrade(u)
    engine = make_engine(u)
    sessions = session_factory(engine)
    taipei = timezone(timedelta(hours=8))
    local = datetime(2026, 3, 1, 9, 30, tzinfo=taipei)
    with sessions.begin() as s:
        s.add(alerts.store.EngineStateRow(id=1, state={}, updated_at=local))
    with sessions() as s:
        row = s.get(alerts.store.EngineStateRow, 1)
        assert row is not None
        assert row.updated_at == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
        assert row.updated_at.tzinfo is UTC
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT updated_at FROM engine_state")).scalar() == "2026-03-01 01:30:00.000000"
        )
    with sessions() as s:
        s.add(alerts.store.EngineStateRow(id=2, state={}, updated_at=datetime(2026, 3, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            s.flush()
    engine.dispose()


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    u = url(tmp_path)
    upgrade(u)
    engine = make_engine(u)
    with pytest.raises(Exception, match="FOREIGN KEY"), engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO alert_history (alert_id, at, what) VALUES (42, '2026-03-01 00:00:00', 'fired')"
        )
    engine.dispose()


INSERT = (
    "INSERT INTO silences (kind, matchers, starts_at, ends_at, reason, created_by, created_at)"
    " VALUES ('silence', '{{}}', '2026-01-01', '2026-01-02', '{who}', 'x', '2026-01-01')"
)


def test_two_writers_queue_on_the_file_instead_of_failing(tmp_path: Path) -> None:
    # BEGIN IMMEDIATE: the second writer waits for the first (busy_timeout), it does not fail when it
    # upgrades a read lock.
    u = url(tmp_path)
    upgrade(u)
    engine_a, engine_b = make_engine(u), make_engine(u)
    started = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        started.wait()
        try:
            with engine_b.begin() as conn:
                n = conn.exec_driver_sql("SELECT count(*) FROM silences").scalar()
                conn.exec_driver_sql(INSERT.format(who=f"b {n}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=second)
    t.start()
    with engine_a.begin() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM silences").scalar()
        started.set()
        threading.Event().wait(0.3)
        conn.exec_driver_sql(INSERT.format(who=f"a {n}"))
    t.join(10)
    assert not errors, errors
    with engine_a.connect() as conn:
        reasons = sorted(r for (r,) in conn.exec_driver_sql("SELECT reason FROM silences"))
    assert reasons == ["a 0", "b 1"]  # the second saw the first's row: serialised, not lost
    engine_a.dispose()
    engine_b.dispose()


def test_a_read_only_transaction_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    """A writer holds the write lock (BEGIN IMMEDIATE); a reader through read_only(engine) begins
    deferred and reads the last committed state at once, where a default transaction would queue."""
    from records.db import read_only

    engine = make_engine(tmp_path / "r.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with engine.connect() as writer:
        writer.begin()
        writer.exec_driver_sql("UPDATE t SET v = 2")  # holds the write lock, not committed
        with read_only(engine).connect() as reader:
            assert reader.exec_driver_sql("SELECT v FROM t").scalar() == 1
        with engine.connect() as other:
            other.connection.driver_connection.execute("PRAGMA busy_timeout = 0")  # type: ignore[union-attr]
            with pytest.raises(Exception, match="locked"):
                other.exec_driver_sql("SELECT v FROM t")  # BEGIN IMMEDIATE: refused, the writer holds it
        writer.rollback()
