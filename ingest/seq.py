"""Per-device sequence tracking of ingest (docs/mqtt.md, "Sequence numbers"), kept across restarts.

`SeqTracker` is pure: it classifies each seq against the device's high-water mark and remembers the holes
a gap leaves, so that a message arriving late (a redelivery, or a reading the collector published again
after the broker lost it) fills its hole instead of counting as a duplicate. A collector names its
numbering (`epoch`): a new epoch is a restart of the numbering, and within one epoch a lower seq is a late
or repeated message, never a restart. Without an epoch (older collectors) a drop of more than
RESTART_DROP, or a 0 that fills no hole, is taken for a restart. `missing` is what is still
outstanding, not every gap ever seen: zero means nothing is missing right now. `SeqStateFile` keeps the
tracker and the counters in SQLite next to the other state, so a restarted ingest neither forgets a hole
nor resets its counters.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bus.state_dir import create_private_file

Key = tuple[str, str, str]  # (site, room, device)

# A seq this far below the last one is a new outbox (collector reinstalled, outbox deleted), not a
# redelivery: redeliveries are at most an outbox's backlog behind.
RESTART_DROP = 100_000
# Holes kept per device; beyond it the oldest are given up (still counted as missing, never filled).
MAX_HOLES = 1000


class SeqOutcome(StrEnum):
    """How a message's seq relates to what was seen before from its device."""

    FIRST = "first"
    NEXT = "next"
    DUPLICATE = "duplicate"
    GAP = "gap"
    FILLED = "filled"
    RESTART = "restart"


@dataclass(slots=True)
class DeviceSeq:
    """High-water mark and open holes (inclusive ranges) of one device."""

    last: int
    holes: list[tuple[int, int]] = field(default_factory=list)
    given_up: int = 0  # missing messages whose holes were dropped (MAX_HOLES)
    epoch: str | None = None

    @property
    def missing(self) -> int:
        """Messages below `last` not seen yet."""
        return self.given_up + sum(hi - lo + 1 for lo, hi in self.holes)

    def fill(self, seq: int) -> bool:
        """Remove `seq` from the holes; True if it was missing."""
        for i, (lo, hi) in enumerate(self.holes):
            if lo <= seq <= hi:
                parts = [(lo, seq - 1)] if seq > lo else []
                parts += [(seq + 1, hi)] if seq < hi else []
                self.holes[i : i + 1] = parts
                return True
        return False


@dataclass(slots=True)
class SeqTracker:
    """Seq state of every device; `track_holes=False` for a shared subscription (gaps are expected)."""

    track_holes: bool = True
    devices: dict[Key, DeviceSeq] = field(default_factory=dict)
    changed: set[Key] = field(default_factory=set)

    def observe(self, key: Key, seq: int, epoch: str | None = None) -> tuple[SeqOutcome, int]:
        """Record `seq` (of numbering `epoch`) for `key`; the outcome and, for a gap, how many it opened."""
        self.changed.add(key)
        dev = self.devices.get(key)
        if dev is None:
            self.devices[key] = DeviceSeq(seq, epoch=epoch)
            return SeqOutcome.FIRST, 0
        if epoch is not None and dev.epoch is not None and epoch != dev.epoch:
            self.devices[key] = DeviceSeq(seq, epoch=epoch)  # a new numbering: follow it from here
            return SeqOutcome.RESTART, 0
        dev.epoch = dev.epoch or epoch
        if seq == dev.last + 1:
            dev.last = seq
            return SeqOutcome.NEXT, 0
        if seq > dev.last + 1:
            missing = seq - dev.last - 1
            if self.track_holes:
                dev.holes.append((dev.last + 1, seq - 1))
                if len(dev.holes) > MAX_HOLES:
                    lo, hi = dev.holes.pop(0)
                    dev.given_up += hi - lo + 1
            dev.last = seq
            return SeqOutcome.GAP, missing
        if dev.fill(seq):
            return SeqOutcome.FILLED, 0
        if epoch is None and (dev.last - seq > RESTART_DROP or (seq == 0 and dev.last > 0)):
            # No epoch to tell: a much lower number, or a 0 that fills no hole, is a new numbering.
            self.devices[key] = DeviceSeq(seq)
            return SeqOutcome.RESTART, 0
        return SeqOutcome.DUPLICATE, 0  # a redelivery, or late after its device's first message here

    @property
    def missing(self) -> int:
        """Messages missing right now, over every device."""
        return sum(d.missing for d in self.devices.values())


class SeqStateFile:
    """SQLite file holding a SeqTracker's devices and ingest's counters (`state_dir/ingest*.db`)."""

    def __init__(self, path: Path) -> None:
        """Open (or create, 0600) the file."""
        self.path = path
        self._db = sqlite3.connect(create_private_file(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a killed process keeps every commit
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS devices (site TEXT, room TEXT, device TEXT,"
            " last INTEGER, holes TEXT, given_up INTEGER, epoch TEXT,"
            " PRIMARY KEY (site, room, device))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER)")

    def load(self, tracker: SeqTracker) -> dict[str, int]:
        """Fill `tracker` with the stored devices; return the stored counters."""
        rows = self._db.execute("SELECT site, room, device, last, holes, given_up, epoch FROM devices")
        for site, room, device, last, holes, given_up, epoch in rows:
            tracker.devices[(site, room, device)] = DeviceSeq(
                last, [(lo, hi) for lo, hi in json.loads(holes)], given_up, epoch
            )
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def save(self, tracker: SeqTracker, counters: Mapping[str, int]) -> None:
        """Persist the devices changed since the last save and the counters, in one transaction."""
        rows: Iterable[tuple[object, ...]] = [
            (*key, dev.last, json.dumps(dev.holes), dev.given_up, dev.epoch)
            for key in tracker.changed
            if (dev := tracker.devices.get(key)) is not None
        ]
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO counters VALUES (?, ?)", counters.items())
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        tracker.changed.clear()

    def close(self) -> None:
        """Close the file."""
        self._db.close()


__all__ = ["DeviceSeq", "SeqOutcome", "SeqStateFile", "SeqTracker"]
