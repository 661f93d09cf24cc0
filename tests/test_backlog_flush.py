"""Flushing a backlog never delays polling: 5,000 queued readings go out (and into the database, in the
same `roomguard run` process) while 50 devices poll every second, with no missed poll and no false error.

Before: 1.5 s after a reconnect, while 3,786 queued messages were published on the same event loop, six
devices missed a poll and five got a false `comm_error: poll deadline exceeded`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bus.outbox import Outbox, Pending
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult
from devices.wire import encode_poll, topic_readings
from testkit.services import Influxd, Mosquitto
from tests.test_pipeline_outages import DEVICES, Proc, _env, _site, _wait_all_devices_after, modbus_room

pytestmark = pytest.mark.integration
__all__ = ["modbus_room"]
BACKLOG = 5000
# A 1 s grid with jitter only at the start: consecutive polls of a device are 1 s apart; one missed grid
# point makes 2 s, two in a row 3 s. The flush is CPU work on the same box (ingest decodes 5,000
# genset-sized readings and writes them), so on 2 cores shared with another suite a poll may overrun
# once (1.62 s and 1.93 s gaps were seen with two suites side by side); what the fix
# removed, and this bounds, is polling stalling for seconds behind the flush and the false errors that
# came with it.
MAX_INTERVAL_S = 2.5
# On a box so starved of CPU that polls slip without any backlog at all (3x slower CI machines, a
# parallel build), the bound is what polling achieved on its own before the broker came back, plus this
# margin: the flush may not make polling worse than the box already does (before the fix it skipped
# grid points and produced false errors where the steady phase had none).
STARVED_MARGIN_S = 0.5
S = 1_000_000_000
BACKLOG_COUNT = "SELECT count(temp_c) FROM env WHERE device =~ /^backlog-/"


def _fill(state: Path, site: str) -> None:
    """Queue BACKLOG readings of 20 other devices in the collector's outbox, as an outage would leave."""
    state.mkdir(parents=True, exist_ok=True)
    start = datetime.now(UTC) - timedelta(minutes=10)
    with Outbox(state / "outbox.db", 10**9, 7 * 86400) as ob:
        batch = []
        for i in range(BACKLOG):
            device = f"backlog-{i % 20:02d}"
            ref = DeviceRef(site, "r1", device, DeviceClass.ENV, "sht20-xy-md02")
            # As heavy as a genset's poll (the DSE profile has 124 metrics): decoding is the costly part.
            metrics = (Metric("temp_c", 21.5), *(Metric(f"m{k}", k + 0.5) for k in range(120)))
            poll = PollResult(ref, start + timedelta(milliseconds=100 * i), metrics, duration_s=0.01)
            topic = topic_readings("roomguard/v1", site, "r1", device)
            batch.append(Pending(topic, encode_poll(poll, i // 20), stream=f"r1/{device}", seq=i // 20))
        ob.put_many(batch)


def _worst_gap(rows: list[dict[str, Any]]) -> float:
    """The longest interval between consecutive polls of one device, in seconds (after the first two
    polls: the start-up jitter spreads the first round)."""
    times: dict[str, list[int]] = {}
    for row in rows:
        times.setdefault(row["device"], []).append(int(row["time"]))
    gaps = [(b - a) / 1e9 for ts in times.values() for a, b in itertools.pairwise(sorted(ts)[2:])]
    return max(gaps, default=0.0)


async def test_a_5000_message_backlog_flushes_without_delaying_any_poll(
    mosquitto_private: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    """As in the issue: polling runs steadily while the broker is away, then the broker comes back and
    the backlog (5,000 genset-sized readings queued before, plus what the outage added) goes out."""
    site = _site(tmp_path, modbus_room, mosquitto_private, influxd_private)
    state = tmp_path / "state"
    _fill(state, "acc")
    log = tmp_path / "run.log"
    mosquitto_private.stop()
    run = Proc("run", str(site), "--state-dir", str(state), env=_env(mosquitto_private), log=log)
    await run.start()
    try:
        snapshot = state / "collector.json"
        deadline = time.monotonic() + 60
        while not (
            snapshot.exists()
            and all(d["polls"] >= 8 for d in json.loads(snapshot.read_text())["devices"].values())
        ):
            assert time.monotonic() < deadline, "polling did not start"
            await asyncio.sleep(0.5)
        reconnect = time.time_ns()
        mosquitto_private.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the backlog is in the database
            # In a thread: this event loop serves the simulated devices (see _wait_all_devices_after).
            rows = await asyncio.to_thread(influxd_private.rows, BACKLOG_COUNT)
            if rows and rows[0]["count"] == BACKLOG:
                break
            await asyncio.sleep(0.5)
        flushed = time.time_ns()
        # A wait, not a bound: on a starved box (two suites and another database test on 2 cores) ingest
        # confirmed parts of the backlog so late that the collector sent them again, and the live
        # readings queued behind that for over a minute; what is asserted below is that no poll was
        # missed and nothing was lost, not how soon the database caught up.
        await _wait_all_devices_after(influxd_private, flushed + 2 * S, 180, log)
    finally:
        await run.stop()
    rows = influxd_private.rows(BACKLOG_COUNT)
    assert rows[0]["count"] == BACKLOG
    polled = influxd_private.rows(
        f'SELECT "quality" FROM env WHERE time >= {reconnect - 3 * S} AND device =~ /^th-/ GROUP BY device'
    )
    series: dict[str, list[tuple[int, str]]] = {}
    for row in polled:
        series.setdefault(row["device"], []).append((int(row["time"]), row["quality"]))
    assert len(series) == DEVICES
    steady = influxd_private.rows(
        f'SELECT "quality" FROM env WHERE time < {reconnect - 3 * S} AND device =~ /^th-/ GROUP BY device'
    )
    worst_steady = _worst_gap(steady)
    allowed = max(MAX_INTERVAL_S, worst_steady + STARVED_MARGIN_S)
    for device, points in series.items():
        points.sort()
        during = [p for p in points if p[0] <= flushed + S]
        assert during[-1][0] - during[0][0] >= (flushed - reconnect) / 1e9 * S, device
        bad = [(t, q) for t, q in during if q != "good"]
        assert not bad, f"{device}: false errors while the backlog flushed: {bad[:3]}"
        for (a, _), (b, _) in itertools.pairwise(during):
            gap = (b - a) / 1e9
            why = f"at most {allowed:.2f} s allowed, the steady phase's worst gap was {worst_steady:.2f} s"
            assert gap <= allowed, f"{device}: a poll was missed at {a} ({gap:.2f} s; {why})"
    snapshot_data = json.loads((state / "collector.json").read_text())
    assert all(d["failures"] == 0 for d in snapshot_data["devices"].values())
    assert "unreachable" not in log.read_text()
