"""A consistent copy of a SQLite file that its owner holds with an exclusive lock, made by the owner.

The outbox is opened with `PRAGMA locking_mode=EXCLUSIVE` in WAL mode (bus/outbox_db.py): its WAL index
lives in the owner's heap and no other process can read the file while it runs (sqlite.org/wal.html,
"Use of WAL Without Shared-Memory"). So `roomguard backup` asks the owner instead: it leaves
`<state>/.backup-handoff/<name>.request`, and the owner, at its next periodic tick, copies the file with
the online backup API on its own connection into `<name>.copy` (temp name, then rename) and removes the
request. The copy is one consistent snapshot, WAL content included (sqlite.org/backup.html).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path

from bus.state_dir import create_private_file, prepare_state_dir

HANDOFF_DIR = ".backup-handoff"
_LOG = logging.getLogger(__name__)


def request_path(db: Path) -> Path:
    """The file whose presence asks the owner of `db` for a copy."""
    return db.parent / HANDOFF_DIR / f"{db.name}.request"


def copy_path(db: Path) -> Path:
    """Where the owner of `db` puts the requested copy."""
    return db.parent / HANDOFF_DIR / f"{db.name}.copy"


def write_copy(conn: sqlite3.Connection, target: Path) -> None:
    """Copy the database of `conn` to `target` (0600) with the online backup API, via a temp name."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    create_private_file(tmp)
    dst = sqlite3.connect(tmp)
    try:
        conn.backup(dst)  # one step (pages=-1): a single consistent snapshot of the source
    finally:
        dst.close()
    os.replace(tmp, target)


def serve_request(db: Path, conn: sqlite3.Connection) -> bool:
    """If a backup asked for a copy of `db`, write it from `conn` (its owner's connection); True if so."""
    request = request_path(db)
    if not request.exists():
        return False
    try:
        prepare_state_dir(request.parent)
        write_copy(conn, copy_path(db))
    except (OSError, sqlite3.Error):
        _LOG.exception("cannot write the backup copy of %s", db)
        return False
    finally:
        with contextlib.suppress(OSError):
            request.unlink()
    _LOG.info("wrote a backup copy of %s", db)
    return True


__all__ = ["HANDOFF_DIR", "copy_path", "request_path", "serve_request", "write_copy"]
