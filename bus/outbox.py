"""Durable MQTT outbox: every message is stored in SQLite (WAL) first and leaves only once delivered.

Contract (after Telegraf's Buffer/Transaction and ThingsBoard's EventStorage, minus their data loss):

- `put`/`put_many` return only after the message is committed; the returned id is the delivery handle.
- `peek(limit)` is stateless: it returns the oldest messages not yet acknowledged by the broker, in id
  order. A publisher that reconnects simply peeks again from the start, so unacked messages are re-sent
  in order, and delivered ones never come back.
- `ack(ids)` records the broker's PUBACK; unknown, already acked or dropped ids are ignored. Ids are never
  reused (AUTOINCREMENT), so a late ack can never touch a newer message. What a PUBACK does depends on the
  message: one stored without a `stream` (status, events) is deleted. One stored with a `stream` and
  `seq` (a device's readings) is deleted only when `release="broker"`; with `release="archive"` (the
  default) it is marked published and stays until `confirm()` says the archive (ingest → InfluxDB) has
  it, because a broker that crashes before its autosave loses messages it has already acknowledged.
  `unpublish_all()` / `unpublish_lost()` put published-but-unconfirmed messages back in line for a new
  delivery (after a broker reconnect; when newer messages of the stream were confirmed and these were not).
- Bounds (`max_bytes`, `max_age_s`) drop the OLDEST messages, in-flight ones included; every drop event is
  counted (persisted in the file), logged once as a WARNING and exposed through `dropped_*`/`last_drop`.

Durability: WAL with synchronous=NORMAL (default) survives a killed process (SIGKILL, OOM): a commit is
in the OS page cache before `put` returns. On power loss the last commits before the crash may be rolled
back (the database stays consistent). `synchronous="FULL"` fsyncs the WAL on every commit and closes that
window, at the cost of one fsync per `put`/`put_many` (hence: batch with `put_many`).

Concurrency: one process owns the file (exclusive lock, a second opener gets `OutboxLocked`). All methods
are synchronous and short (one small transaction, cached prepared statements); they are meant to be
called directly from the asyncio loop thread, not from several threads at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from bus.outbox_db import OutboxCorrupt, OutboxDb, OutboxError, OutboxLocked

_LOG = logging.getLogger(__name__)

_ACK_CHUNK = 500  # ids per DELETE statement
DropReason = Literal["bytes", "age"]
Release = Literal["archive", "broker"]


@dataclass(slots=True)
class OutboxMessage:
    """One stored message, as returned by `peek`."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created: float


class Pending(NamedTuple):
    """A message to store with `put_many`; a plain (topic, payload) tuple works too.

    `stream` and `seq` mark a message the archive confirms (a device's readings: `room/device`, seq).
    """

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    stream: str | None = None
    seq: int | None = None


class _Drop(NamedTuple):
    """One forced drop inside a transaction: why, the last id, how many, and their bytes."""

    reason: DropReason
    last: int
    messages: int
    size: int


@dataclass(frozen=True, slots=True)
class DropEvent:
    """The most recent forced drop: when (clock time), how many messages, and why."""

    when: float
    count: int
    reason: DropReason


class Outbox:
    """SQLite-backed FIFO of MQTT messages: kept until delivered, with bounds and drop accounting."""

    def __init__(
        self,
        path: str | Path,
        max_bytes: int,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        release: Release = "archive",
    ) -> None:
        """Open (or create) the outbox at `path`; raise OutboxLocked/OutboxCorrupt rather than recreate."""
        if max_bytes <= 0 or max_age_s <= 0:
            raise ValueError("max_bytes and max_age_s must be positive")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        if release not in ("archive", "broker"):
            raise ValueError(f"release must be archive or broker, not {release!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.release = release
        self.confirmed_up_to = 0  # highest id the archive confirmed since this outbox was opened
        self._clock = clock
        self._db = OutboxDb(self.path, synchronous)
        count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages").fetchone()
        self._count, self._bytes = int(count), int(size)
        self.enforce_bounds()  # bounds may have shrunk, or time passed, while we were down

    # -- writing -----------------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Store one message durably and return its id."""
        return self.put_many([Pending(topic, payload, qos, retain)])[0]

    def put_many(self, messages: Iterable[Pending | tuple[str, bytes]]) -> list[int]:
        """Store several messages in one transaction (all or none) and return their ids in order."""
        now = self._clock()
        rows = []
        for m in messages:
            p = Pending(*m)
            if p.qos not in (0, 1, 2):
                raise ValueError(f"invalid qos {p.qos} for {p.topic}")
            if (p.stream is None) != (p.seq is None):
                raise ValueError(f"stream and seq go together (message on {p.topic})")
            payload = bytes(p.payload)
            size = len(payload) + len(p.topic.encode())
            rows.append((p.topic, payload, p.qos, int(p.retain), now, size, p.stream, p.seq))
        if not rows:
            return []
        added = sum(r[5] for r in rows)
        if added > self.max_bytes:
            # Storing it would mean dropping everything else and still exceeding the bound: refuse.
            raise ValueError(f"{added} bytes in one put exceed the outbox bound of {self.max_bytes}")
        drops: list[_Drop] = []
        with self._tx():
            drops += self._drop_prefix("age", lambda _size, created: created < now - self.max_age_s)
            need = self._bytes - sum(d.size for d in drops) + added - self.max_bytes
            drops += self._drop_bytes(need)
            self._db.executemany(
                "INSERT INTO messages (topic, payload, qos, retain, created, size, stream, seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            last = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
            self._record_drops(drops, now)
        # One transaction under an exclusive lock: AUTOINCREMENT hands out consecutive ids.
        self._applied(drops)
        self._count += len(rows)
        self._bytes += added
        return list(range(last - len(rows) + 1, last + 1))

    def ack(self, ids: Iterable[int]) -> None:
        """Record the broker's PUBACK: delete, or (archive release) mark a stream message published."""
        ids = list(ids)
        if not ids:
            return
        count = size = 0
        keep = "stream IS NULL" if self.release == "archive" else "1"
        now = self._clock()
        with self._tx():
            # One statement per chunk (SQLite binds at most 32,766 variables); RETURNING keeps the cached
            # depth exact without a table scan.
            for start in range(0, len(ids), _ACK_CHUNK):
                chunk = ids[start : start + _ACK_CHUNK]
                marks = ",".join("?" * len(chunk))
                for (msize,) in self._db.execute(
                    f"DELETE FROM messages WHERE id IN ({marks}) AND {keep} RETURNING size",  # noqa: S608 - only "?" marks
                    chunk,
                ).fetchall():
                    count += 1
                    size += msize
                if self.release == "archive":
                    self._db.execute(
                        f"INSERT OR IGNORE INTO published (id, at) SELECT id, ? FROM messages"  # noqa: S608
                        f" WHERE id IN ({marks}) AND stream IS NOT NULL",
                        (now, *chunk),
                    )
        self._count -= count
        self._bytes -= size

    def confirm(self, ranges: Iterable[tuple[str, int, int]]) -> int:
        """The archive has stored `stream`'s messages with seq in [first, last]: delete them; how many."""
        count = size = top = 0
        with self._tx():
            for stream, first, last in ranges:
                for mid, msize in self._db.execute(
                    "DELETE FROM messages WHERE stream = ? AND seq BETWEEN ? AND ? RETURNING id, size",
                    (stream, first, last),
                ).fetchall():
                    count += 1
                    size += msize
                    top = max(top, mid)
        self._count -= count
        self._bytes -= size
        self.confirmed_up_to = max(self.confirmed_up_to, top)
        return count

    def unpublish_all(self) -> int:
        """Put every published, unconfirmed message back in line (the broker may have lost them); how many."""
        with self._tx():
            return int(self._db.execute("DELETE FROM published").rowcount)

    def unpublish_lost(self, published_before: float) -> int:
        """Put back in line what the archive skipped: messages published before `published_before` and
        still unconfirmed although messages stored after them (a higher id) were confirmed; how many.

        The broker hands messages on in the order they were published and ingest stores them in that
        order, so such a message was lost on the way (a broker that crashed before saving it, or that came
        back empty and took the message before ingest had subscribed again)."""
        with self._tx():
            return int(
                self._db.execute(
                    "DELETE FROM published WHERE at < ? AND id < ?", (published_before, self.confirmed_up_to)
                ).rowcount
            )

    def enforce_bounds(self) -> int:
        """Drop the oldest messages that break the age or byte bound; return how many were dropped."""
        now = self._clock()
        with self._tx():
            drops = self._drop_prefix("age", lambda _size, created: created < now - self.max_age_s)
            drops += self._drop_bytes(self._bytes - sum(d.size for d in drops) - self.max_bytes)
            self._record_drops(drops, now)
        self._applied(drops)
        return sum(d.messages for d in drops)

    # -- reading -----------------------------------------------------------------------------------

    def peek(self, limit: int, after_id: int = 0) -> list[OutboxMessage]:
        """The oldest messages the broker has not acknowledged (id > after_id), oldest first."""
        rows = self._query(
            "SELECT id, topic, payload, qos, retain, created FROM messages m WHERE id > ?"
            " AND NOT EXISTS (SELECT 1 FROM published p WHERE p.id = m.id) ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [OutboxMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def depth(self) -> tuple[int, int]:
        """(messages, bytes) currently stored, in-flight and unconfirmed ones included."""
        return self._count, self._bytes

    @property
    def awaiting(self) -> int:
        """Messages the broker acknowledged that wait for the archive's confirmation."""
        return int(self._query("SELECT COUNT(*) FROM published", ())[0][0])

    def max_seqs(self) -> dict[str, int]:
        """The highest stored seq of every stream (so a restart never hands out a stored seq again)."""
        rows = self._query(
            "SELECT stream, MAX(seq) FROM messages WHERE stream IS NOT NULL GROUP BY stream", ()
        )
        return {stream: int(seq) for stream, seq in rows}

    def oldest_age_s(self) -> float:
        """Age in seconds of the oldest stored message; 0.0 when empty."""
        rows = self._query("SELECT created FROM messages ORDER BY id LIMIT 1", ())
        return max(0.0, self._clock() - rows[0][0]) if rows else 0.0

    @property
    def dropped_by_reason(self) -> dict[DropReason, int]:
        """Messages dropped by each bound since the file was created (persisted)."""
        stats = self._stats()
        return {"bytes": int(stats.get("dropped_bytes", 0)), "age": int(stats.get("dropped_age", 0))}

    @property
    def dropped_total(self) -> int:
        """Messages dropped by any bound since the file was created (persisted)."""
        return sum(self.dropped_by_reason.values())

    @property
    def last_drop(self) -> DropEvent | None:
        """The most recent drop event (persisted), or None if nothing was ever dropped."""
        s = self._stats()
        if "last_drop_when" not in s:
            return None
        return DropEvent(float(s["last_drop_when"]), int(s["last_drop_count"]), s["last_drop_reason"])

    def serve_backup_request(self) -> bool:
        """Write the copy a running `roomguard backup` asked for (bus/backup_handoff.py); True if one was."""
        return self._db.serve_backup_request()

    def close(self) -> None:
        """Close the file (committed data is already safe; this only releases the lock)."""
        self._db.close()

    def __enter__(self) -> Outbox:
        """Use as a context manager that closes on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the outbox."""
        self.close()

    # -- internals ---------------------------------------------------------------------------------

    def _drop_prefix(self, reason: DropReason, doomed: Callable[[int, float], bool]) -> list[_Drop]:
        """Delete the longest oldest-first run of messages for which `doomed(size, created)` holds."""
        # Walking in id order and stopping at the first survivor keeps drops a prefix ("oldest first")
        # and cheap: usually one row is read. A wall clock stepping back cannot punch holes in the queue.
        last = count = size = 0
        for mid, msize, created in self._db.execute("SELECT id, size, created FROM messages ORDER BY id"):
            if not doomed(msize, created):
                break
            last, count, size = mid, count + 1, size + msize
        if not count:
            return []
        self._db.execute("DELETE FROM messages WHERE id <= ?", (last,))
        return [_Drop(reason, last, count, size)]

    def _drop_bytes(self, need: int) -> list[_Drop]:
        """Drop the oldest messages until at least `need` bytes are freed."""
        if need <= 0:
            return []
        freed = 0

        def doomed(size: int, _created: float) -> bool:
            nonlocal freed
            if freed >= need:
                return False
            freed += size
            return True

        return self._drop_prefix("bytes", doomed)

    def _record_drops(self, drops: list[_Drop], now: float) -> None:
        """Persist drop counters in the same transaction as the delete, so they can never disagree."""
        for drop in drops:
            self._db.execute(
                "INSERT INTO stats (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                (f"dropped_{drop.reason}", drop.messages),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO stats (key, value) VALUES (?, ?)",
                [
                    ("last_drop_when", now),
                    ("last_drop_count", drop.messages),
                    ("last_drop_reason", drop.reason),
                ],
            )

    def _applied(self, drops: list[_Drop]) -> None:
        """After commit: update the cached depth and log each drop event once."""
        for d in drops:
            self._count -= d.messages
            self._bytes -= d.size
            why = f"older than {self.max_age_s:g} s" if d.reason == "age" else f"over {self.max_bytes} bytes"
            _LOG.warning(
                "outbox %s: dropped %d oldest message(s) (ids up to %d, %d bytes): %s",
                self.path,
                d.messages,
                d.last,
                d.size,
                why,
            )

    def _stats(self) -> dict[str, Any]:
        return dict(self._query("SELECT key, value FROM stats", ()))

    def _query(self, sql: str, params: Sequence[object]) -> list[Any]:
        return self._db.query(sql, params)

    def _tx(self) -> AbstractContextManager[None]:
        return self._db.tx()


__all__ = ["DropEvent", "Outbox", "OutboxCorrupt", "OutboxError", "OutboxLocked", "OutboxMessage", "Pending"]
