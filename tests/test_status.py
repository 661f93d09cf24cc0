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


def test_the_compliance_board_shows_counts_and_every_item_not_passing(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    board = [
        {"item": "cc16000-03-environment", "code": "CC-16000 (三)", "status": "pass", "reason_zh": "正常"},
        {
            "item": "cc16000-05-generator-test",
            "code": "CC-16000 (五)",
            "status": "fail",
            "reason_zh": "發電機 gen-1 月測逾期 3 天",
            "reason_en": "generator gen-1: monthly test 3 days overdue",
        },
        {
            "item": "cc16000-07-duty-roster",
            "code": "CC-16000 (七)1",
            "status": "unknown",
            "reason_zh": "無值班表",
        },
    ]
    snap = {**process_identity(), "running": True, "evaluated_at": now.isoformat(), "board": board}
    write_snapshot(tmp_path, "compliance", snap)
    text = format_status(tmp_path, "tpe-hq", now + timedelta(seconds=1), TAIPEI)
    assert "pass 通過 1, warn 注意 0, fail 未通過 1, unknown 未知 1" in text
    assert "12-01 10:00" in text  # evaluated at, in the site's zone
    assert "FAIL     CC-16000 (五) 發電機 gen-1 月測逾期 3 天" in text
    assert "generator gen-1: monthly test 3 days overdue" in text
    assert "正常" not in text  # a passing item is only counted
