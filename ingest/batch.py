"""Helpers of the ingest bridge: statistics and the dead-letter file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bus.state_dir import create_private_file

_LOG = logging.getLogger("ingest.bridge")
# A rejected message is kept in the dead-letter file up to this size (a 10 MB flood is not worth keeping
# in full); its length and SHA-256 are always recorded.
DEAD_LETTER_PAYLOAD_CHARS = 16_384
# Counters that survive a restart (stored with the sequence state, ingest/seq.py).
PERSISTED_COUNTERS = (
    "written_points",
    "duplicates",
    "gaps",
    "filled",
    "restarts",
    "malformed",
    "rejected",
    "dead_lettered",
    "confirmed",
)


@dataclass(slots=True)
class IngestStats:
    """Counters and state of one ingest process, written to its status snapshot."""

    received: int = 0
    written_points: int = 0
    batches: int = 0
    duplicates: int = 0
    gaps: int = 0
    missing: int = 0  # outstanding now: gaps not yet filled by a late or republished message
    filled: int = 0
    restarts: int = 0
    malformed: int = 0  # not a readings message at all (undecodable)
    rejected: int = 0  # a readings message over a limit (size, metrics, time window, unknown device)
    dead_lettered: int = 0  # points of batches the database refused
    confirmed: int = 0  # messages confirmed back to their collector
    db_state: str = "ok"
    db_state_since: str | None = None
    db_error: str | None = None
    broker_connected: bool = False
    broker_since: str | None = None
    backlog: int = 0
    last_write_ts: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able copy."""
        return asdict(self)

    def counters(self) -> dict[str, int]:
        """The counters kept across restarts."""
        return {name: int(getattr(self, name)) for name in PERSISTED_COUNTERS}

    def restore(self, counters: dict[str, int]) -> None:
        """Continue the counters of the previous run."""
        for name in PERSISTED_COUNTERS:
            if name in counters:
                setattr(self, name, int(counters[name]))


class DeadLetterFile:
    """Append-only JSON-lines file of batches the database rejected: ts, reason, status, lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, lines: list[str], reason: str, status: int | None) -> None:
        """Append a batch the database refused (its messages are acked right after: this is their copy)."""
        self._write({"ts": datetime.now(UTC).isoformat(), "reason": reason, "status": status, "lines": lines})

    def append_message(self, topic: str, payload: bytes, reason: str) -> None:
        """Append a message ingest refused to write (malformed or over a limit), with the reason."""
        text = payload[:DEAD_LETTER_PAYLOAD_CHARS].decode("utf-8", errors="replace")
        self._write(
            {
                "ts": datetime.now(UTC).isoformat(),
                "reason": reason,
                "topic": topic,
                "payload_bytes": len(payload),
                "payload_sha256": hashlib.sha256(payload).hexdigest(),
                "payload": text,
                "truncated": len(payload) > DEAD_LETTER_PAYLOAD_CHARS,
            }
        )

    def _write(self, record: dict[str, Any]) -> None:
        """Append one JSON line and fsync it; the file is created 0600."""
        create_private_file(self.path)
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = ["DeadLetterFile", "IngestStats"]
