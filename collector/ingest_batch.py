"""Helpers of the ingest bridge: statistics, sequence tracking, dead-letter file and log rate limits."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

_LOG = logging.getLogger("collector.ingest")

# A seq this far below the last one is a new outbox (collector reinstalled, outbox deleted), not a
# redelivery: redeliveries are at most a broker's in-flight window behind (docs/mqtt.md, "Sequence numbers").
RESTART_DROP = 1000


@dataclass(slots=True)
class IngestStats:
    """Counters and state of one ingest process, written to its status snapshot."""

    received: int = 0
    written_points: int = 0
    batches: int = 0
    duplicates: int = 0
    gaps: int = 0
    missing: int = 0
    restarts: int = 0
    malformed: int = 0
    dead_lettered: int = 0
    db_state: str = "ok"
    db_error: str | None = None
    broker_connected: bool = False
    backlog: int = 0
    last_write_ts: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able copy."""
        return asdict(self)


class SeqOutcome(StrEnum):
    """How a message's seq relates to the last one seen from its device."""

    FIRST = "first"
    NEXT = "next"
    DUPLICATE = "duplicate"
    GAP = "gap"
    RESTART = "restart"


@dataclass(slots=True)
class SeqTracker:
    """Last seq per (site, room, device), in memory; classifies each new seq per docs/mqtt.md."""

    last: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def observe(self, key: tuple[str, str, str], seq: int) -> tuple[SeqOutcome, int]:
        """Record `seq` for `key`; return the outcome and, for a gap, how many messages are missing."""
        last = self.last.get(key)
        if last is None:
            self.last[key] = seq
            return SeqOutcome.FIRST, 0
        if seq == last + 1:
            self.last[key] = seq
            return SeqOutcome.NEXT, 0
        if seq > last + 1:
            self.last[key] = seq
            return SeqOutcome.GAP, seq - last - 1
        if last - seq > RESTART_DROP or (seq == 0 and last > 0 and last < RESTART_DROP // 10):
            # A much lower number is a new outbox; follow it from here so its successors count as normal.
            self.last[key] = seq
            return SeqOutcome.RESTART, 0
        # A redelivery: keep the high-water mark, the message is written again idempotently.
        return SeqOutcome.DUPLICATE, 0


class RateLimit:
    """At most one log line per `interval_s`; tells how many were suppressed in between."""

    def __init__(self, interval_s: float = 30.0) -> None:
        self.interval_s = interval_s
        self._next = 0.0
        self._suppressed = 0

    def allow(self, now: float | None = None) -> tuple[bool, int]:
        """(log this one?, how many were suppressed since the last logged one)."""
        t = time.monotonic() if now is None else now
        if t >= self._next:
            self._next = t + self.interval_s
            n, self._suppressed = self._suppressed, 0
            return True, n
        self._suppressed += 1
        return False, 0


class DeadLetterFile:
    """Append-only JSON-lines file of batches the database rejected: ts, reason, status, lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, lines: list[str], reason: str, status: int | None) -> None:
        """Append one record and fsync it: the MQTT messages are acked right after, so this is their copy."""
        record = {"ts": datetime.now(UTC).isoformat(), "reason": reason, "status": status, "lines": lines}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


class Backoff:
    """Exponential retry delay: `first_s`, doubling, capped at `cap_s`; `reset()` after a success."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 30.0) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self._next = first_s

    def next_delay(self) -> float:
        """The delay before the next attempt (and double it for the one after)."""
        delay = self._next
        self._next = min(self._next * 2, self.cap_s)
        return delay

    def reset(self) -> None:
        """Back to the first delay."""
        self._next = self.first_s


__all__ = ["Backoff", "DeadLetterFile", "IngestStats", "RateLimit", "SeqOutcome", "SeqTracker"]
