"""Status snapshots the running processes write and `roomguard status` reads (atomic JSON files).

Each process (collector, ingest) rewrites its own snapshot every few seconds; a reader can tell a
stopped process from a running one by the snapshot's age. Writes go to a temporary file that is then
renamed over the old one, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STALE_AFTER_S = 15.0


def write_snapshot(directory: Path, process: str, data: dict[str, Any], now: datetime | None = None) -> Path:
    """Atomically replace `<directory>/<process>.json` with `data` plus the time it was written."""
    directory.mkdir(parents=True, exist_ok=True)
    body = {"process": process, "written": (now or datetime.now(UTC)).isoformat(), **data}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{process}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh, ensure_ascii=False, indent=1, default=str)
        target = directory / f"{process}.json"
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_snapshots(directory: Path) -> dict[str, dict[str, Any]]:
    """Every process snapshot in `directory`, by process name (unreadable files are reported as such)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            out[path.stem] = {"process": path.stem, "error": f"{path}: {exc}"}
    return out


def age_s(snapshot: dict[str, Any], now: datetime) -> float | None:
    """Seconds since the snapshot was written, or None if it has no valid time."""
    try:
        written = datetime.fromisoformat(str(snapshot["written"]))
    except (KeyError, ValueError):
        return None
    return (now - written).total_seconds()
