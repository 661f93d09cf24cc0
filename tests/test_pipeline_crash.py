"""Acceptance: crashes, not clean stops. A broker SIGKILLed with readings in flight, the database stopped,
ingest and the collector SIGKILLed: every device's 1 s series in InfluxDB has no hole, ingest's sequence
tracking reports nothing missing, and `roomguard status` tells the truth at every step.

The broker runs with a long autosave interval, so a SIGKILL really loses what it had acknowledged but not
yet written to disk (mosquitto.conf(5) `autosave_interval`): only the collector keeping each reading until
ingest confirms it is in the database can make up for that.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.services import Influxd, Mosquitto, serve
from tests.test_pipeline_outages import (
    DEVICES,
    ROOT,
    _assert_ingest_missed_nothing,
    _assert_no_gaps,
    _collect_and_ingest,
    _collect_and_ingest_running,
    _series,
    _site,
    _wait_all_devices_after,
    modbus_room,
)

pytestmark = pytest.mark.integration
__all__ = ["modbus_room"]  # the fixture, re-exported for pytest
S = 1_000_000_000


@pytest.fixture
def mosquitto_crashy(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private mosquitto that saves its in-memory state only every 10 minutes (and on a clean stop)."""
    yield from serve(Mosquitto(tmp_path / "mosquitto", autosave_interval_s=600))


class Status:
    """`roomguard status` of the test's site, run as a user would."""

    def __init__(self, site: Path, state: Path) -> None:
        self.site, self.state = site, state

    def text(self) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "roomguard", "status", str(self.site), "--state-dir", str(self.state)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    async def shows(self, *expected: str, both: str | None = None, limit_s: float = 25.0) -> str:
        """Wait until every `expected` fragment is in the status text and `both` is in the collector's
        and in ingest's section; fail with the text if that does not happen in time."""
        deadline = time.monotonic() + limit_s
        while True:
            text = await asyncio.to_thread(self.text)
            if all(e in text for e in expected) and (both is None or text.count(both) == 2):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"status never showed {expected} / {both!r} twice:\n{text}")
            await asyncio.sleep(1)


async def _nothing_missing(state: Path, limit_s: float = 60.0) -> None:
    """Wait until ingest reports no reading missing: what the broker lost was published again and stored.

    (The collector republishes a reading once ingest has confirmed newer ones of the same device and not
    that one for collector/collect.py LOST_AFTER_S.)"""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if json.loads((state / "ingest.json").read_text()).get("missing") == 0:
                return
        except (OSError, ValueError):
            pass
        await asyncio.sleep(1)


def _line(text: str, start: str) -> str:
    return next((ln for ln in text.splitlines() if ln.strip().startswith(start)), "")


async def test_broker_sigkilled_with_readings_in_flight_loses_none(
    mosquitto_crashy: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    """Before: readings the broker had acknowledged were deleted from the outbox on PUBACK, and a broker
    killed before its autosave lost them for good (555 of them in the issue's run)."""
    async with _collect_and_ingest_running(
        tmp_path, modbus_room, mosquitto_crashy, influxd_private, "collect.log"
    ) as (_collect, ingest, t0):
        await asyncio.sleep(3)
        # Ingest stalls (as under load): the broker acknowledges readings and queues them for its session.
        assert ingest.proc is not None
        ingest.proc.send_signal(signal.SIGSTOP)
        stalled = time.time_ns()
        await asyncio.sleep(4)
        mosquitto_crashy.kill()  # in-memory queue and sessions lost: nothing was autosaved
        ingest.proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(3)
        mosquitto_crashy.start()
        back = time.time_ns()
        await _wait_all_devices_after(influxd_private, back + 5 * S, 120, tmp_path / "collect.log")
        await _nothing_missing(tmp_path / "state")
    _assert_ingest_missed_nothing(tmp_path / "state")
    _assert_no_gaps(_series(influxd_private, t0), stalled - 3 * S, back + 5 * S)


async def test_acceptance_everything_killed_in_turn_zero_holes_and_status_right(
    mosquitto_crashy: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    site = _site(tmp_path, modbus_room, mosquitto_crashy, influxd_private)
    collect, ingest = _collect_and_ingest(tmp_path, modbus_room, mosquitto_crashy, influxd_private)
    status = Status(site, tmp_path / "state")
    t0 = time.time_ns()
    await collect.start()
    await ingest.start()
    try:
        await _wait_all_devices_after(influxd_private, t0, 60, tmp_path / "collect.log")
        text = await status.shows("database 資料庫: connected", both="broker MQTT 代理: connected")
        assert "running 執行中" in _line(text, "collector 收集器")
        assert "running 執行中" in _line(text, "ingest 寫入程序")
        window_start = time.time_ns()

        # 1. The broker crashes with readings in flight (ingest stalled, so the broker holds a queue).
        assert ingest.proc is not None
        ingest.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(3)
        mosquitto_crashy.kill()
        ingest.proc.send_signal(signal.SIGCONT)
        await status.shows(both="broker MQTT 代理: DISCONNECTED")
        await asyncio.sleep(5)
        mosquitto_crashy.start()
        text = await status.shows(both="broker MQTT 代理: connected")
        assert "DISCONNECTED" not in text

        # 2. The database stops for 20 s: ingest retries, the collector's outbox holds the readings.
        await asyncio.sleep(3)
        influxd_private.stop()
        text = await status.shows("database 資料庫: RETRYING")
        await asyncio.sleep(20)
        influxd_private.start()
        await status.shows("database 資料庫: connected")

        # 3. Ingest is SIGKILLed: status says dead at once, not "running" from its last snapshot.
        await asyncio.sleep(3)
        await ingest.stop(signal.SIGKILL)
        text = await status.shows("ingest 寫入程序 (ingest): DEAD", limit_s=10)
        await asyncio.sleep(3)
        await ingest.start()
        await status.shows("ingest 寫入程序 (ingest): running")

        # 4. The collector is SIGKILLed (nothing is polled while it is dead: no reading to lose).
        await asyncio.sleep(3)
        await collect.stop(signal.SIGKILL)
        killed = time.time_ns()
        text = await status.shows("DEAD 已終止", limit_s=10)
        assert "DEAD" in _line(text, "collector 收集器")
        await asyncio.sleep(3)
        await collect.start()
        text = await status.shows("database 資料庫: connected", both="broker MQTT 代理: connected")
        assert "running 執行中" in _line(text, "collector 收集器")
        # Up again (how long a process start takes depends on the machine): polling resumes from here.
        restarted = time.time_ns()

        await _wait_all_devices_after(influxd_private, restarted + 5 * S, 120, tmp_path / "collect.log")
        await _nothing_missing(tmp_path / "state")
        text = await asyncio.to_thread(status.text)
        assert "missing" not in _line(text, "⚠"), text
    finally:
        await ingest.stop()
        await collect.stop()
    _assert_ingest_missed_nothing(tmp_path / "state")
    series = _series(influxd_private, t0)
    assert len(series) == DEVICES
    _assert_no_gaps(series, window_start, restarted + 5 * S, allow=(killed, restarted))
