"""A few seconds' memory of the slow parts of a page (the CC-16000 board, the test schedule, the duty
roster), keyed by what they are computed from, so a room full of screens refreshing the status page does
not recompute them per request (bench/api.py).

A key carries the records' version (the audit log's head and the newest check result: every record
write is audited, every check change stored), so a write shows on the next page at once; what changes
without either (the clock moving on a shift's end) waits at most `ttl_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from starlette.requests import Request

from alerts.store import AlertHistory
from compliance.store import CheckRow
from records.audit import AuditHead

T = TypeVar("T")


class PageCache:
    """Values by key for `ttl_s` seconds of the monotonic clock (thread-safe; a handful of keys)."""

    def __init__(self, ttl_s: float = 5.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._held: dict[Hashable, tuple[float, Any]] = {}

    def peek(self, key: Hashable) -> Any | None:
        """The value held for `key` if younger than ttl_s, else None."""
        now = self._monotonic()
        with self._lock:
            held = self._held.get(key)
            return held[1] if held is not None and now - held[0] < self.ttl_s else None

    def put(self, key: Hashable, value: Any) -> None:
        """Keep `value` for `key` (dropping what has aged out)."""
        now = self._monotonic()
        with self._lock:
            self._held = {k: v for k, v in self._held.items() if now - v[0] < self.ttl_s}
            self._held[key] = (now, value)

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value held for `key` if younger than ttl_s, else `build()` (outside the lock) kept."""
        now = self._monotonic()
        with self._lock:
            held = self._held.get(key)
            if held is not None and now - held[0] < self.ttl_s:
                value: T = held[1]
                return value
        value = build()
        self.put(key, value)  # old keys (an earlier version or minute) age out: only the newest matter
        return value


# One statement for the three numbers, compiled once per dialect: it runs on every request (the auth memo
# and the pages key on it), where building and caching a statement per call cost more than the read.
_VERSIONS = select(
    select(func.max(AuditHead.seq)).scalar_subquery(),
    select(func.max(CheckRow.id)).scalar_subquery(),
    select(func.max(AlertHistory.id)).scalar_subquery(),
)
_VERSIONS_SQL: dict[str, str] = {}
SAFE_METHODS = frozenset({"GET", "HEAD"})


def records_version(engine: Engine) -> tuple[int, int, int]:
    """What the pages are computed from, as numbers that grow on every change (blocking): the audit
    log's head (every record write, ack, silence, sign-off, login, user change), the newest check result,
    the newest alert history entry (an alert fired, resolved, acknowledged, silenced by any process).
    `engine` should be read-only (records.db.read_only): three O(1) reads that never wait under WAL."""
    sql = _VERSIONS_SQL.get(engine.dialect.name)
    if sql is None:
        sql = _VERSIONS_SQL[engine.dialect.name] = str(_VERSIONS.compile(dialect=engine.dialect))
    with engine.connect() as conn:
        head, check, alert = conn.exec_driver_sql(sql).one()
    return (head or 0, check or 0, alert or 0)


def request_versions(request: Request, engine: Engine) -> tuple[int, int, int]:
    """records_version, read once per GET (the auth and the page share it); a write request reads it
    afresh each time, since what it wrote moves the numbers on."""
    if request.method in SAFE_METHODS:
        held = getattr(request.state, "records_version", None)
        if held is not None:
            return held  # type: ignore[no-any-return]
    versions = records_version(engine)
    request.state.records_version = versions
    return versions
