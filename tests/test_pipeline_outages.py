"""Acceptance: outages of the broker, the database or our own processes lose no reading.

50 simulated devices are polled every second by the real commands (`roomguard run`, or `collect` and
`ingest` as separate processes) into a private mosquitto (persistence on) and a private InfluxDB 1.6.
"No reading lost" is checked twice: ingest's per-device sequence numbers show no message missing between
the collector and the database (ingest acknowledges only what InfluxDB accepted), and each device's 1 s
series in the database has no hole across the outage. InfluxDB keeps one point per (series, timestamp),
so a redelivered message cannot appear twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from devices.registry import ProfileRegistry
from devices.sim.modbus_server import ModbusSimServer
from testkit.services import Influxd, Mosquitto

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
DEVICES = 50
OUTAGE_S = 60
# A 1 s cadence. Under load the poller may skip one grid point (a poll that overran is not made twice),
# which is a poll not taken, not a reading lost; an outage's lost minute would show as a 60 s hole.
MAX_GAP_S = 2.5


@pytest.fixture
async def modbus_room() -> AsyncIterator[int]:
    """50 SHT20 T/RH sensors behind one simulated Modbus TCP gateway."""
    profile = ProfileRegistry.builtin().get("sht20-xy-md02")
    server = ModbusSimServer("127.0.0.1", 0)
    for unit in range(1, DEVICES + 1):
        server.add_device(unit, profile, {"temp_c": 20 + unit / 10})  # type: ignore[arg-type]
    await server.start()
    yield server.port
    await server.stop()


def _site(tmp: Path, modbus_port: int, broker: Mosquitto, db: Influxd) -> Path:
    devices = "\n".join(
        f"  - {{id: th-{u:02d}, name: Sensor {u}, room: r1, profile: sht20-xy-md02,"
        " settings: {resolution: x10},"
        f" modbus: {{host: 127.0.0.1, port: {modbus_port}, unit_id: {u}}}}}"
        for u in range(1, DEVICES + 1)
    )
    path = tmp / "site.yaml"
    path.write_text(
        "site: {id: acc, name: Acceptance}\n"
        "rooms: [{id: r1, name: Room 1}]\n"
        "defaults: {poll_interval_s: 1, timeout_s: 1}\n"
        f"devices:\n{devices}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username},"
        " password: {env: ROOMGUARD_MQTT_PASSWORD}}\n"
        f"influxdb: {{url: 'http://127.0.0.1:{db.port}', api: v1, database: {db.database}}}\n"
    )
    return path


class Proc:
    """A roomguard command in a child process."""

    def __init__(self, *args: str, env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        fh = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "roomguard", *self.args, cwd=ROOT, env=self.env, stdout=fh, stderr=fh
        )
        fh.close()

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def _series(db: Influxd, since_ns: int) -> dict[str, list[int]]:
    # Every poll writes a line with `quality`, a failed one too (comm_error, no values): that is the
    # reading whose loss this test looks for.
    rows = db.rows(f'SELECT "quality" FROM env WHERE time >= {since_ns} GROUP BY device')
    out: dict[str, list[int]] = {}
    for row in rows:
        out.setdefault(row["device"], []).append(int(row["time"]))
    return {d: sorted(ts) for d, ts in out.items()}


async def _wait_all_devices_after(db: Influxd, after_ns: int, deadline_s: float, proc_log: Path) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        # In a thread: the simulated devices are served by this event loop, and a query to a database
        # busy with a backlog can take seconds; a blocked loop would make the devices late, not the product.
        series = await asyncio.to_thread(_series, db, after_ns)
        if len(series) == DEVICES:
            return
        await asyncio.sleep(1)
    tail = (await asyncio.to_thread(proc_log.read_text))[-4000:]
    pytest.fail(f"not every device reached the database after the outage; log:\n{tail}")


def _assert_no_gaps(
    series: dict[str, list[int]], start_ns: int, end_ns: int, allow: tuple[int, int] | None = None
):
    assert len(series) == DEVICES, f"{len(series)} devices in the database"
    for device, ts in series.items():
        window = [t for t in ts if start_ns <= t <= end_ns]
        assert window, device
        assert window[0] - start_ns <= MAX_GAP_S * 1e9, f"{device}: late start"
        assert end_ns - window[-1] <= MAX_GAP_S * 1e9, f"{device}: ends early"
        for a, b in itertools.pairwise(window):
            if allow and allow[0] - MAX_GAP_S * 1e9 <= a <= allow[1]:
                # The collector itself was dead from `allow[0]` (its last reading before the kill must be
                # within MAX_GAP_S of it: nothing it held may be missing) and polls again once restarted,
                # however long a busy box takes to start it: nothing was polled, nothing to lose.
                continue
            gap = (b - a) / 1e9
            assert gap <= MAX_GAP_S, f"{device}: {gap:.1f} s without readings at {a}"


def _assert_ingest_missed_nothing(state: Path) -> None:
    """Ingest's sequence tracking: no message of any device went missing between collector and database."""
    snapshot = json.loads((state / "ingest.json").read_text())
    assert snapshot["missing"] == 0, snapshot
    assert snapshot["dead_lettered"] == 0, snapshot


def _env(broker: Mosquitto) -> dict[str, str]:
    return {**os.environ, "ROOMGUARD_MQTT_PASSWORD": broker.password}


async def _outage(
    mosquitto_private: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path, victim: str
) -> None:
    site = _site(tmp_path, modbus_room, mosquitto_private, influxd_private)
    log = tmp_path / "run.log"
    run = Proc("run", str(site), "--state-dir", str(tmp_path / "state"), env=_env(mosquitto_private), log=log)
    t0 = time.time_ns()
    await run.start()
    try:
        await _wait_all_devices_after(influxd_private, t0, 60, log)
        # Every device polled for a few seconds before the outage, so the checked window starts in data.
        await asyncio.sleep(5)
        outage_start = time.time_ns()
        server = mosquitto_private if victim == "broker" else influxd_private
        server.stop()
        await asyncio.sleep(OUTAGE_S)
        server.start()
        back = time.time_ns()
        await _wait_all_devices_after(influxd_private, back + 5_000_000_000, 180, log)
    finally:
        await run.stop()
    _assert_ingest_missed_nothing(tmp_path / "state")
    _assert_no_gaps(_series(influxd_private, t0), outage_start - 3_000_000_000, back + 5_000_000_000)


async def test_broker_down_for_a_minute_loses_no_reading(
    mosquitto_private: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    await _outage(mosquitto_private, influxd_private, modbus_room, tmp_path, "broker")


async def test_database_down_for_a_minute_loses_no_reading(
    mosquitto_private: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    await _outage(mosquitto_private, influxd_private, modbus_room, tmp_path, "database")


def _collect_and_ingest(tmp: Path, modbus_port: int, broker: Mosquitto, db: Influxd) -> tuple[Proc, Proc]:
    """`roomguard collect` and `roomguard ingest` as separate processes sharing one state directory."""
    site = str(_site(tmp, modbus_port, broker, db))
    state = str(tmp / "state")
    env = _env(broker)
    return (
        Proc("collect", site, "--state-dir", state, env=env, log=tmp / "collect.log"),
        Proc("ingest", site, "--state-dir", state, env=env, log=tmp / "ingest.log"),
    )


@asynccontextmanager
async def _collect_and_ingest_running(
    tmp: Path, modbus_port: int, broker: Mosquitto, db: Influxd, log: str
) -> AsyncIterator[tuple[Proc, Proc, int]]:
    """Start both, wait until every device is in the database; yield (collect, ingest, start ns)."""
    collect, ingest = _collect_and_ingest(tmp, modbus_port, broker, db)
    t0 = time.time_ns()
    await collect.start()
    await ingest.start()
    try:
        await _wait_all_devices_after(db, t0, 60, tmp / log)
        yield collect, ingest, t0
    finally:
        await ingest.stop()
        await collect.stop()


async def test_ingest_killed_mid_batch_loses_no_reading(
    mosquitto_private: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    async with _collect_and_ingest_running(
        tmp_path, modbus_room, mosquitto_private, influxd_private, "ingest.log"
    ) as (_collect, ingest, t0):
        start = time.time_ns()
        for _ in range(3):  # SIGKILL at arbitrary points of the batch cycle
            await asyncio.sleep(2.3)
            await ingest.stop(signal.SIGKILL)
            await asyncio.sleep(3)
            await ingest.start()
        back = time.time_ns()
        await _wait_all_devices_after(influxd_private, back + 5_000_000_000, 120, tmp_path / "ingest.log")
    _assert_ingest_missed_nothing(tmp_path / "state")
    _assert_no_gaps(_series(influxd_private, t0), start, back + 5_000_000_000)


async def test_collector_killed_delivers_what_its_outbox_held(
    mosquitto_private: Mosquitto, influxd_private: Influxd, modbus_room: int, tmp_path: Path
) -> None:
    async with _collect_and_ingest_running(
        tmp_path, modbus_room, mosquitto_private, influxd_private, "collect.log"
    ) as (collect, _ingest, t0):
        # With the broker away the readings pile up in the outbox; then the collector dies hard.
        mosquitto_private.stop()
        broker_down = time.time_ns()
        await asyncio.sleep(15)
        await collect.stop(signal.SIGKILL)
        killed = time.time_ns()
        mosquitto_private.start()
        await asyncio.sleep(3)
        await collect.start()
        restarted = time.time_ns()
        await _wait_all_devices_after(influxd_private, restarted, 120, tmp_path / "collect.log")
        # Polling resumed when the restarted process got there (seconds later on a busy box): the
        # window checked for gaps runs to a few seconds after every device was polled again.
        after = await asyncio.to_thread(_series, influxd_private, restarted)
        resumed = max(ts[0] for ts in after.values())
        await _wait_all_devices_after(influxd_private, resumed + 5_000_000_000, 120, tmp_path / "collect.log")
    _assert_ingest_missed_nothing(tmp_path / "state")
    series = _series(influxd_private, t0)
    # Everything polled while the broker was down, up to the kill, came out of the outbox after restart.
    _assert_no_gaps(series, broker_down - 3_000_000_000, resumed + 5_000_000_000, allow=(killed, restarted))
    assert all(any(broker_down < t < killed - 2_000_000_000 for t in ts) for ts in series.values())
