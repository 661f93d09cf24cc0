"""The poller's admission gate: the deadline starts at admission, waiting polls can be stopped, and
devices that hold their slots without using the CPU do not keep the others out."""

from __future__ import annotations

import asyncio
import contextlib

from collector.admission import AdmissionConfig
from collector.poller import Poller, PollTarget
from devices.errors import DeviceTimeout
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality

HANG_S = 30  # only a hang reaches this


class SleepyReader:
    """A device that answers after `delay_s`, or never (`fail_after_s`: then times out)."""

    def __init__(self, delay_s: float = 0.0, fail_after_s: float | None = None) -> None:
        self.delay_s = delay_s
        self.fail_after_s = fail_after_s
        self.reads = 0
        self.reading = asyncio.Event()

    async def read(self) -> list[Metric]:
        self.reads += 1
        self.reading.set()
        if self.fail_after_s is not None:
            await asyncio.sleep(self.fail_after_s)
            raise DeviceTimeout("silent")
        await asyncio.sleep(self.delay_s)
        return [Metric("temp_c", 21.5)]

    async def prepare(self) -> None:
        pass

    async def close(self) -> None:
        pass


def target(name: str, reader: SleepyReader, interval_s: float = 1.0, timeout_s: float = 0.3) -> PollTarget:
    return PollTarget(
        ref=DeviceRef("s", "r", name, DeviceClass.ENV, "test"),
        reader=reader,
        interval_s=interval_s,
        timeout_s=timeout_s,
        retries=0,
    )


async def ignore(_: PollResult) -> None:
    pass


async def test_time_waiting_for_admission_does_not_count_against_the_deadline() -> None:
    # One at a time: the last of four waits 1.5 s, longer than its 1.1 s deadline, then reads in 0.5 s.
    targets = [target(f"d{i}", SleepyReader(delay_s=0.5), interval_s=0.5) for i in range(4)]
    assert all(t.deadline_s < 1.5 for t in targets)
    results = await Poller(targets, ignore).poll_once(concurrency=1)
    assert [r.quality for r in results] == [Quality.GOOD] * 4, [r.error for r in results]
    assert all(r.duration_s < targets[0].deadline_s for r in results)  # the wait is not in it either


async def test_a_poll_over_its_deadline_still_fails() -> None:
    (result,) = await Poller([target("slow", SleepyReader(delay_s=5), interval_s=0.2)], ignore).poll_once()
    assert result.quality is Quality.COMM_ERROR
    assert result.error == "DeviceTimeout: poll deadline exceeded"


async def test_stopping_the_poller_releases_polls_in_flight_and_waiting() -> None:
    hung = [SleepyReader(delay_s=3600) for _ in range(5)]
    targets = [target(f"d{i}", r, interval_s=3600, timeout_s=3600) for i, r in enumerate(hung)]
    poller = Poller(targets, ignore, jitter_pct=0, admission=AdmissionConfig(initial=1, floor=1, ceiling=1))
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(hung[0].reading.wait(), HANG_S)
    await asyncio.sleep(0.1)  # the other four are queued at the gate by now
    gate = poller.admission
    assert gate is not None
    assert (gate.in_flight, gate.queued) == (1, 4)
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), HANG_S)
    assert (gate.in_flight, gate.queued) == (0, 0)
    assert sum(r.reads for r in hung) == 1


async def test_silent_devices_holding_slots_do_not_keep_live_ones_out() -> None:
    """Four silent devices fill a limit of four for 20 s; twenty live ones are polled long before."""
    silent = [target(f"silent-{i}", SleepyReader(fail_after_s=20), timeout_s=20) for i in range(4)]
    live = [target(f"live-{i}", SleepyReader(delay_s=0.01)) for i in range(20)]
    polled: set[str] = set()
    everyone = asyncio.Event()

    async def sink(result: PollResult) -> None:
        assert result.ref.device.startswith("live"), "a silent device ended before the live ones"
        assert result.quality is Quality.GOOD, result.error
        polled.add(result.ref.device)
        if len(polled) == len(live):
            everyone.set()

    poller = Poller([*silent, *live], sink, jitter_pct=0, admission=AdmissionConfig(initial=4, floor=1))
    task = asyncio.create_task(poller.run())  # silent ones first: they take every slot
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everyone.wait(), 15)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(polled) == len(live), f"only {len(polled)} live devices polled"
