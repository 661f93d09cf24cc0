"""Per-device sequence numbers that survive restarts (docs/mqtt.md, "Sequence numbers").

The next `seq` of every device lives in a small SQLite file, `state_dir/seq.db`, apart from the outbox
(the outbox file is opened with an exclusive lock by its own connection). The collector assigns numbers,
commits the messages to the outbox, and then commits the new next-numbers here.

Crash window: a crash after the outbox commit and before this one would restart the affected devices at
the numbers they had before that batch. The collector closes it at start-up by raising every number above
the highest seq still in the outbox (`at_least`): those messages were never published, since the crash
came before the publisher saw them. Committing here first would instead leave a gap, which ingest
reports as missing data: a false alarm.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from secrets import token_hex

from bus.state_dir import create_private_file


class SeqStore:
    """The next sequence number per key (`room/device`), cached in memory, persisted in SQLite."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the file and load every device's next number."""
        self.path = path
        self._db = sqlite3.connect(create_private_file(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a killed process keeps every commit; only a power cut can lose the last ones, which is
        # the same window as the outbox's own default.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS seq (key TEXT PRIMARY KEY, next INTEGER NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        # The name of this numbering: a new file (state directory lost or reset) starts a new epoch, so
        # ingest knows seq 0 of a new epoch is a restart and a low seq of the same epoch is a late message.
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (token_hex(6),))
        self.epoch: str = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]
        self._next: dict[str, int] = dict(self._db.execute("SELECT key, next FROM seq").fetchall())

    def peek(self, key: str) -> int:
        """The number the next message of `key` gets (0 for a new device)."""
        return self._next.get(key, 0)

    def commit(self, updates: Mapping[str, int]) -> None:
        """Persist new next-numbers (after the messages using the previous ones are in the outbox)."""
        if not updates:
            return
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO seq (key, next) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET next = excluded.next",
                list(updates.items()),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._next.update(updates)

    def at_least(self, floors: Mapping[str, int]) -> None:
        """Raise next-numbers that are below `floors` (never lower one) and persist them."""
        self.commit({k: v for k, v in floors.items() if v > self.peek(k)})

    def close(self) -> None:
        """Close the file."""
        self._db.close()
