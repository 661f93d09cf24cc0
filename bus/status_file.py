"""Status snapshots the running processes write and `roomguard status` reads (atomic JSON files).

Each process (collector, ingest) rewrites its own snapshot every few seconds, with its pid, host and the
kernel's start time of that pid: a reader on the same host tells a dead process (SIGKILL, OOM) from a live
one at once, instead of trusting the last snapshot until it is old; a reused pid has another start time.
Writes go to a temporary file (0600) that is then renamed over the old one, so a reader never sees half a
file.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bus.state_dir import prepare_state_dir

STALE_AFTER_S = 15.0
Liveness = Literal["alive", "dead", "unknown"]


def _pid_start(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (proc(5), /proc/PID/stat field 22), if known."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_identity() -> dict[str, Any]:
    """pid, host and pid start time of this process, for `liveness` to check later."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "pid_start": _pid_start(pid)}


def liveness(snapshot: dict[str, Any]) -> Liveness:
    """Whether the process that wrote `snapshot` still runs (`unknown` on another host or without a pid)."""
    pid = snapshot.get("pid")
    if not isinstance(pid, int) or pid <= 0 or snapshot.get("host") != socket.gethostname():
        return "unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        pass  # exists, owned by another user
    started = snapshot.get("pid_start")
    if started is not None and _pid_start(pid) not in (None, started):
        return "dead"  # the pid now belongs to another process
    return "alive"


def write_snapshot(directory: Path, process: str, data: dict[str, Any], now: datetime | None = None) -> Path:
    """Atomically replace `<directory>/<process>.json` with `data` plus the time it was written."""
    prepare_state_dir(directory)
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
