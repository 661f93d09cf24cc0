"""A large SNMP fleet starts cleanly on a CPU that cannot keep up: no first poll falsely times out.

How fast a machine polls is a benchmark's business (bench/poll.py); this only checks the mechanism:
polls wait for admission while the event loop is saturated instead of timing out in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.poller import Poller, PollTarget
from devices.reading import DeviceRef, PollResult, Quality
from devices.registry import ProfileRegistry
from devices.snmp_profile import SnmpProfile
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV2c
from tests.snmp_fixtures import Snmpd, profile_overrides

FLEET = 400
# Each result costs the event loop this much (the sink spins): 400 first polls need at least 4 s of
# loop time however fast the machine, far more than fits in their 2 s timeouts if fired at once.
SINK_BUSY_S = 0.010
# Only a hang reaches this: the test checks that polls do not fail, not how fast they complete.
HANG_S = 120


@pytest.fixture
def snmpd_ups(tmp_path: Path) -> Iterator[int]:
    """net-snmp snmpd serving the rfc1628-ups examples, one read community per device."""
    agent = Snmpd(
        tmp_path / "snmpd",
        [*(f"rocommunity dev{i} 127.0.0.1" for i in range(FLEET)), *profile_overrides("rfc1628-ups")],
        ready=["-v2c", "-c", "dev0"],
    )
    yield agent.port
    agent.close()


@pytest.mark.integration
async def test_first_round_of_a_large_fleet_does_not_time_out(snmpd_ups: int) -> None:
    """400 devices with distinct communities start within half a second (10 % jitter of 5 s) while
    every result keeps the event loop busy: the first poll of each must be good, none a timeout.

    Fired at once, hundreds of requests wait for the saturated loop until they time out, answered or
    not. The admission gate holds polls back before their deadline starts, as many in flight as the
    loop keeps time with. Registering the communities lazily would stall the loop too (Poller.prepare)."""
    profile = ProfileRegistry.builtin().get("rfc1628-ups")
    assert isinstance(profile, SnmpProfile)
    targets = [
        PollTarget(
            ref=DeviceRef("s", "r", f"ups-{i}", profile.device_class, profile.model),
            reader=SnmpReader(profile, SnmpTarget("127.0.0.1", snmpd_ups, 2.0, 0, SnmpV2c(f"dev{i}"))),
            interval_s=5,
            timeout_s=2.0,
        )
        for i in range(FLEET)
    ]
    first: dict[str, PollResult] = {}
    everyone_polled = asyncio.Event()

    async def sink(result: PollResult) -> None:
        busy_until = time.perf_counter() + SINK_BUSY_S
        while time.perf_counter() < busy_until:  # CPU the loop does not have for polling
            pass
        first.setdefault(result.ref.device, result)
        if len(first) == FLEET:
            everyone_polled.set()

    poller = Poller(targets, sink, jitter_pct=10, seed=3)
    task = asyncio.create_task(poller.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everyone_polled.wait(), timeout=HANG_S)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(first) == FLEET, f"only {len(first)} of {FLEET} devices polled within {HANG_S} s"
    bad = [f"{r.ref.device}: {r.error}" for r in first.values() if r.quality is not Quality.GOOD]
    assert not bad, f"{len(bad)} of {FLEET} first polls failed, e.g. {bad[:3]}"
    assert all({m.name: m.value for m in r.metrics}["output_source"] == "normal" for r in first.values())
