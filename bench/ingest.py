"""Pipeline benchmark: roomguard's collector → outbox → broker → ingest → database, next to its peers.

    .venv/bin/python -m bench.ingest [--polls 100000] [--latency-seconds 30]

All from one run, on one private mosquitto (persistence on) and one InfluxDB 1.6:
1. sustained device-polls/s through the real collector path (Collector.sink → outbox → publisher) and
   `roomguard ingest` until every point is queryable; next to a raw paho QoS 1 publish → subscribe loop
   with the same payload (the transport's ceiling) and direct line-protocol POSTs to the same database;
2. p50/p99 latency from poll timestamp to queryable, running `roomguard simulate` + `roomguard run` on the
   example site;
3. the resident memory of that `roomguard run` (with its ingest child process).
Targets: >= 0.5 x the raw paho rate, p99 < 2 s at the example site's load, `roomguard run` < 150 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.ingest_peers import direct_write_rate, raw_paho_rate
from bench.ingest_producer import synthetic_poll
from devices.wire import encode_poll
from ingest.lineproto import LineEncoder
from testkit.example_site import SECRETS, example_site
from testkit.services import Influxd, Mosquitto

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _roomguard(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A `roomguard` command in the background, output discarded."""
    return subprocess.Popen(
        [PY, "-m", "roomguard", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _site(path: Path, broker: Mosquitto, db: Influxd, devices: str = "") -> Path:
    path.write_text(
        "site: {id: bench, name: Bench}\nrooms: [{id: r1, name: Room 1}]\n"
        f"devices: [{devices}]\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username},"
        " password: {env: ROOMGUARD_MQTT_PASSWORD}}\n"
        f"influxdb: {{url: 'http://127.0.0.1:{db.port}', api: v1, database: {db.database}}}\n"
    )
    return path


def _count(db: Influxd, measurement: str) -> int:
    rows = db.rows(f'SELECT count("rh_pct") FROM "{measurement}"')
    return int(rows[0]["count"]) if rows else 0


def pipeline_rate(work: Path, broker: Mosquitto, db: Influxd, polls: int, devices: int) -> float:
    """Device-polls/s from the first poll entering the collector to the last point queryable."""
    site = _site(work / "site.yaml", broker, db)
    env = {**os.environ, "ROOMGUARD_MQTT_PASSWORD": broker.password}
    ingest = _roomguard("ingest", str(site), "--state-dir", str(work / "state"), env=env)
    try:
        time.sleep(2.0)  # ingest connected and subscribed
        producer = subprocess.Popen(
            [PY, "-m", "bench.ingest_producer", str(site), str(work / "cstate"), str(polls), str(devices)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert producer.stdout is not None
        first = producer.stdout.readline()
        assert first.startswith("START "), first
        start = float(first.split()[1])
        deadline = time.monotonic() + 300
        while _count(db, "env") < polls:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {_count(db, 'env')} of {polls} points arrived")
            time.sleep(0.05)
        end = time.time()
        assert "DONE" in producer.stdout.readline()
        producer.wait(timeout=60)
        return polls / (end - start)
    finally:
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(timeout=30)


def latency_and_memory(
    work: Path, broker: Mosquitto, db: Influxd, seconds: float
) -> tuple[list[float], float]:
    """Latencies (s) from poll timestamp to first seen in the database, and the peak RSS (MB) of `run`."""
    site, _ = example_site(
        work / "example.yaml",
        mqtt=(
            f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username}, "
            "password: {env: ROOMGUARD_MQTT_PASSWORD}}\n"
        ),
        influxdb=f"influxdb: {{url: 'http://127.0.0.1:{db.port}', api: v1, database: {db.database}}}\n",
    )
    secrets = {**SECRETS, "ROOMGUARD_MQTT_PASSWORD": broker.password}
    env = {**os.environ, **secrets}
    sim = _roomguard("simulate", str(site), env=env)
    time.sleep(3)
    run = _roomguard("run", str(site), "--state-dir", str(work / "run-state"), env=env)
    seen: set[tuple[str, int]] = set()
    latencies: list[float] = []
    peak_rss = 0.0
    try:
        time.sleep(5)  # connected, first polls through
        start_ns = time.time_ns()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = time.time_ns()
            for row in db.rows(f'SELECT "quality" FROM /.*/ WHERE time >= {start_ns} GROUP BY "device"'):
                key = (row["device"], int(row["time"]))
                if key not in seen:
                    seen.add(key)
                    latencies.append((now - key[1]) / 1e9)
            # `run` and its ingest child: the edge box pays for both.
            parent = psutil.Process(run.pid)
            procs = [parent, *parent.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in procs) / 2**20
            peak_rss = max(peak_rss, rss)
            time.sleep(0.1)
    finally:
        for p in (run, sim):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
    return latencies, peak_rss


def main() -> None:
    """Run everything and print roomguard's figures beside the peers'."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--polls", type=int, default=100_000)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roomguard-bench-"))
    (work / "mosquitto").mkdir()
    (work / "influxd").mkdir()
    broker = Mosquitto(work / "mosquitto")
    db = Influxd(work / "influxd")
    broker.start()
    db.start()
    try:
        sample = synthetic_poll("bench", "r1", 1, datetime.now(UTC))
        payload = encode_poll(sample, 1)
        ours = pipeline_rate(work, broker, db, args.polls, args.devices)
        paho = raw_paho_rate(broker.host, broker.port, broker.username, broker.password, payload, args.polls)
        paho5 = raw_paho_rate(
            broker.host, broker.port, broker.username, broker.password, payload, args.polls, mqtt5=True
        )
        encoder = LineEncoder()
        first = datetime.now(UTC).timestamp() - args.polls
        lines = [
            encoder.encode(
                synthetic_poll("bench", "r1", i % args.devices, datetime.fromtimestamp(first + i, UTC))
            )
            for i in range(args.polls)
        ]
        db.create_database("direct")
        direct = direct_write_rate(db.url, "direct", lines)
        print(
            f"Pipeline, {args.polls} polls of {args.devices} devices, "
            f"payload {len(payload)} B, device-polls/s:"
        )
        print(f"  roomguard collector → outbox → mosquitto → ingest → InfluxDB  {ours:9.0f}")
        print(
            f"  raw paho QoS 1 publish → subscribe, MQTT 3.1.1        {paho:9.0f}   "
            f"ratio roomguard/paho = {ours / paho:.2f} (target >= 0.5)"
        )
        print(
            f"  raw paho QoS 1 publish → subscribe, MQTT 5 (as ours)  {paho5:9.0f}   "
            f"ratio roomguard/paho = {ours / paho5:.2f}"
        )
        print(f"  direct line-protocol POST to the same InfluxDB         {direct:9.0f}")
        latencies, rss = latency_and_memory(work, broker, db, args.latency_seconds)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"Example site ({len(latencies)} points in {args.latency_seconds:.0f} s): poll → queryable "
            f"p50 {p50:.2f} s, p99 {p99:.2f} s (target p99 < 2 s)"
        )
        print(f"  roomguard run resident memory (and its ingest child), peak: {rss:.0f} MB (target < 150 MB)")
    finally:
        broker.stop()
        db.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
