"""`roomguard status` tells a dead process from a live one at once and shows every time with its zone."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bus.status_file import liveness, process_identity, write_snapshot
from bus.status_report import format_status

TAIPEI = ZoneInfo("Asia/Taipei")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_liveness_by_pid_and_its_start_time() -> None:
    me = process_identity()
    assert liveness(me) == "alive"
    assert liveness({**me, "pid": _dead_pid()}) == "dead"
    assert liveness({**me, "pid_start": (me["pid_start"] or 0) + 1}) == "dead"  # a reused pid
    assert liveness({**me, "host": "another-box"}) == "unknown"
    assert liveness({}) == "unknown"


def test_a_killed_process_is_dead_at_once_not_running_from_its_last_snapshot(tmp_path: Path) -> None:
    """Before: `running` for up to 15 s after a SIGKILL, from the last snapshot written."""
    now = datetime.now(UTC)
    identity = {**process_identity(), "pid": _dead_pid()}
    write_snapshot(
        tmp_path,
        "collector",
        {
            "running": True,
            **identity,
            "collector_id": "c1",
            "broker": {"connected": True, "host": "127.0.0.1", "port": 1},
            "outbox": {},
            "devices": {},
        },
        now=now,
    )
    write_snapshot(
        tmp_path,
        "ingest",
        {
            "running": True,
            **process_identity(),
            "broker_connected": True,
            "broker_since": (now - timedelta(seconds=90)).isoformat(),
            "db_state": "retrying",
            "db_error": "HTTP None: timeout",
            "db_state_since": (now - timedelta(seconds=12)).isoformat(),
            "missing": 3,
        },
        now=now,
    )
    text = format_status(tmp_path, "s1", now, TAIPEI)
    collector = next(line for line in text.splitlines() if line.startswith("collector"))
    assert "DEAD 已終止" in collector
    assert "no longer runs" in collector
    assert "broker MQTT 代理: - (process not running" in text  # no stale "connected"
    assert "ingest 寫入程序 (ingest): running 執行中" in text
    local = (now - timedelta(seconds=12)).astimezone(TAIPEI).strftime("%m-%d %H:%M:%S")
    assert f"database 資料庫: RETRYING 異常 since 自 {local}+08 (12 s)" in text
    assert "times 時間 Asia/Taipei" in text
    assert "3 reading(s) missing" in text


def test_status_reads_snapshots_written_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_snapshot(tmp_path / "state", "ingest", {"x": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["x"] == 1
