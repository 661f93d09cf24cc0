"""Benchmark producer: pushes synthetic polls through the real collector path as fast as it can.

argv: SITE STATE_DIR COUNT DEVICES. Uses `Collector.sink` (encode with seq → outbox → MQTT publisher)
without polling. Prints "START <epoch s>" when connected and about to produce (so process start-up is
not timed) and "DONE <seconds>" once the outbox has drained (every message acknowledged).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.collect import Collector
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult
from siteconfig.config import load_site


def synthetic_poll(site: str, room: str, device: int, ts: datetime) -> PollResult:
    """A T/RH sensor poll shaped like the SHT20 profile's."""
    ref = DeviceRef(site, room, f"bench-{device:04d}", DeviceClass.ENV, "sht20-xy-md02", {"rack": "a01"})
    metrics = (Metric("temp_c", 20.0 + device % 10 / 10), Metric("rh_pct", 45.5))
    return PollResult(ref=ref, ts=ts, metrics=metrics, duration_s=0.002)


async def main(site_path: str, state_dir: str, count: int, devices: int) -> None:
    """Produce `count` polls spread over `devices` devices, then wait for the outbox to drain."""
    site = load_site(site_path)
    collector = Collector(site, Path(state_dir), "bench")
    await collector.publisher.start()
    async with asyncio.timeout(30):
        await collector.publisher.connected.wait()
    room = site.rooms[0].id
    base = datetime.now(UTC) - timedelta(seconds=count // devices + 10)
    print(f"START {time.time():.6f}", flush=True)
    start = time.perf_counter()
    for i in range(count):
        device, step = i % devices, i // devices
        await collector.sink(synthetic_poll(site.site.id, room, device, base + timedelta(seconds=step)))
        if i % 500 == 499:
            await asyncio.sleep(0)  # let the flush and the publisher run, as polling would
    while collector.outbox.depth()[0] > 0 or collector.publisher.inflight:  # noqa: ASYNC110 - polls SQLite
        await asyncio.sleep(0.02)
    print(f"DONE {time.perf_counter() - start:.3f}", flush=True)
    await collector.publisher.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
