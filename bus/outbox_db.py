"""The outbox's SQLite file: opened exclusively, checked, migrated in place; errors that name the file.

The file is tagged with an application id, so a wrong path fails loudly instead of being written into,
and a version: version 1 (before delivery confirmations) is migrated in place, anything else is refused
and left untouched. Exclusive locking gives the outbox one owner, so its cached depth stays exact and two
collectors never publish the same messages twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from bus.backup_handoff import serve_request
from bus.state_dir import create_private_file

# Tags the file as ours, so a wrong path fails loudly instead of being written into.
APPLICATION_ID = 0x52474F42  # "RGOB"
SCHEMA_VERSION = 2
_ACK_CHUNK = 500  # ids per DELETE statement
_SCHEMA = (
    # AUTOINCREMENT: ids are never reused, so a stale ack can never hit a newer message.
    # stream/seq: the device (`room/device`) and sequence number of a readings message, which ingest
    # confirms.
    "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
    " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL,"
    " size INTEGER NOT NULL, stream TEXT, seq INTEGER)",
    # Messages the broker acknowledged that wait for the archive's confirmation, and when. A table of
    # its own, not a column: marking a message would rewrite its whole row (payload included), and
    # putting thousands back in line after a reconnect would rewrite them all, on the polling thread.
    "CREATE TABLE IF NOT EXISTS published (id INTEGER PRIMARY KEY, at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    # Whatever removes a message (confirm, ack, a bound) removes its mark too.
    "CREATE TRIGGER IF NOT EXISTS messages_gone AFTER DELETE ON messages"
    " BEGIN DELETE FROM published WHERE id = old.id; END",
)
_INDEXES = (
    # confirm finds a stream's sequence range.
    "CREATE INDEX IF NOT EXISTS messages_stream ON messages (stream, seq) WHERE stream IS NOT NULL",
)
# Version 1 (before delivery confirmations) had no stream/seq columns: add them in place.
_MIGRATE_FROM_1 = (
    "ALTER TABLE messages ADD COLUMN stream TEXT",
    "ALTER TABLE messages ADD COLUMN seq INTEGER",
)


class OutboxError(Exception):
    """The outbox file cannot be used; the message names the file."""


class OutboxLocked(OutboxError):
    """Another process (or connection) holds the outbox file."""


class OutboxCorrupt(OutboxError):
    """The file is damaged or is not a roomguard outbox; it is left untouched for inspection."""


class OutboxDb:
    """One exclusive connection to an outbox file, with transactions that translate SQLite errors."""

    def __init__(self, path: Path, synchronous: Literal["NORMAL", "FULL"]) -> None:
        """Open (or create, 0600) the file; raise OutboxLocked/OutboxCorrupt rather than recreate it."""
        self.path = path
        try:
            create_private_file(path)  # 0600 whatever the umask; SQLite gives -wal/-shm the same mode
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves, so each call is one txn.
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=0.5, cached_statements=64)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        try:
            self._open(synchronous)
        except BaseException:
            self._conn.close()
            raise

    def _open(self, synchronous: str) -> None:
        db = self._conn
        try:
            # Must be set before WAL so no -shm file is shared.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            if tables and (app_id != APPLICATION_ID or version not in (1, SCHEMA_VERSION)):
                raise OutboxCorrupt(
                    f"{self.path} is not a roomguard outbox (application_id={app_id:#x}, "
                    f"user_version={version}); refusing to touch it"
                )
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise OutboxError(f"cannot put outbox {self.path} in WAL mode (got {mode})")
            db.execute(f"PRAGMA synchronous={synchronous}")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise OutboxCorrupt(f"outbox {self.path} failed integrity check: {check}")
            with self.tx():  # also takes and keeps the exclusive lock from here on
                if tables and version == 1:
                    for ddl in _MIGRATE_FROM_1:
                        db.execute(ddl)
                for ddl in (*_SCHEMA, *_INDEXES):
                    db.execute(ddl)
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise self.translate(exc) from exc

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        """Run one statement (inside `tx()`; SQLite errors surface when the transaction ends)."""
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> sqlite3.Cursor:
        """Run one statement per row (inside `tx()`)."""
        return self._conn.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[object]) -> list[Any]:
        """All rows of a read outside a transaction; SQLite errors become OutboxError."""
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self.translate(exc) from exc

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One IMMEDIATE transaction; sqlite errors become OutboxError naming the file."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self.translate(exc) from exc
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self.translate(exc) from exc
            raise

    def translate(self, exc: sqlite3.Error) -> OutboxError:
        """The OutboxError subclass a SQLite error means, naming the file."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return OutboxLocked(f"outbox {self.path} is locked by another process or connection: {text}")
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return OutboxCorrupt(f"outbox {self.path} is corrupt ({text}); left untouched, move it aside")
        return OutboxError(f"outbox {self.path}: {text}")

    def serve_backup_request(self) -> bool:
        """Answer a pending `roomguard backup` request with a copy made on this (locking) connection."""
        return serve_request(self.path, self._conn)

    def close(self) -> None:
        """Close the connection (releases the lock)."""
        self._conn.close()


__all__ = ["OutboxCorrupt", "OutboxDb", "OutboxError", "OutboxLocked"]
