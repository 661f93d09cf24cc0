"""The state directory is private whatever the umask: 0700, every file in it 0600 (real processes)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from testkit.services import Influxd, Mosquitto
from tests.test_pipeline_outages import _collect_and_ingest, _wait_all_devices_after, modbus_room

pytestmark = pytest.mark.integration
__all__ = ["modbus_room"]


async def test_collector_and_ingest_state_is_private_under_umask_022(
    mosquitto: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    """Before: outbox.db, seq.db and their WAL/SHM files were 0644 and the directory 0755."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)  # as an older version (or a mkdir by hand) left it
    (state / "seq.db-wal").write_bytes(b"")  # a side file left world-readable
    os.chmod(state / "seq.db-wal", 0o644)
    old = os.umask(0o022)  # the children inherit it
    try:
        collect, ingest = _collect_and_ingest(tmp_path, modbus_room, mosquitto, influxd_private)
        t0 = time.time_ns()
        await collect.start()
        await ingest.start()
    finally:
        os.umask(old)
    try:
        await _wait_all_devices_after(influxd_private, t0, 60, tmp_path / "collect.log")
        await asyncio.sleep(3)  # status snapshots written
        # While they run: SQLite removes the -wal and -shm files at a clean close.
        modes = {p.name: p.stat().st_mode & 0o777 for p in state.iterdir() if not p.name.startswith(".")}
    finally:
        await ingest.stop()
        await collect.stop()
    assert state.stat().st_mode & 0o777 == 0o700
    for expected in (
        "outbox.db",
        "outbox.db-wal",
        "seq.db",
        "ingest.db",
        "ingest.db-wal",
        "collector.json",
        "ingest.json",
    ):
        assert expected in modes, modes
    assert {name: oct(mode) for name, mode in modes.items() if mode != 0o600} == {}
