"""The poll scheduler: one asyncio task per device, so a dead or slow device never delays another."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from collector.admission import AdmissionConfig, AdmissionControl
from collector.schedule import PollSchedule
from devices.door import DoorTracker
from devices.errors import TransportError
from devices.fit import device_quality
from devices.reader import DeviceReader
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality

_LOG = logging.getLogger(__name__)

Sink = Callable[[PollResult], Awaitable[None]]

# pysnmp checks request timeouts on a 0.1 s timer and the admission gate lets the loop run up to
# ~0.1 s late: a transport that gives its verdict right on its own worst case must still beat us.
DEADLINE_SLACK_S = 0.5
# How often the gate measures how late the event loop runs.
TICK_S = 0.05


@dataclass(slots=True)
class PollTarget:
    """One configured device: who it is, how to read it and how often."""

    ref: DeviceRef
    reader: DeviceReader
    interval_s: float
    timeout_s: float
    door: DoorTracker | None = None
    retries: int = 1  # extra attempts the transport makes per request (site defaults.retries)

    @property
    def deadline_s(self) -> float:
        """Longest a poll may run once admitted: an interval, or the transport's own worst case."""
        # The transport tries a request retries + 1 times, then may spend one short exchange telling a
        # dead agent from rejected credentials (SNMPv3 discovery probe, at most min(timeout, 1 s)). A
        # deadline shorter than that turns a wrong privacy key into comm_error instead of auth_error.
        verdict = self.timeout_s * (self.retries + 1) + min(self.timeout_s, 1.0)
        return max(self.interval_s, verdict) + DEADLINE_SLACK_S


@dataclass(slots=True)
class DeviceHealth:
    """What the poller knows about one device right now (for status and logs)."""

    last_poll: datetime | None = None
    last_ok: datetime | None = None
    quality: Quality | None = None
    error: str | None = None
    failures: int = 0
    polls: int = 0
    last_duration_s: float = 0.0
    known_metrics: tuple[str, ...] = field(default_factory=tuple)


def utcnow() -> datetime:
    """The wall clock in UTC (the poller's default clock; tests inject their own)."""
    return datetime.now(UTC)


class _Gate:
    """The asyncio side of AdmissionControl: a FIFO of waiting polls and a ticker measuring loop lag."""

    def __init__(self, control: AdmissionControl) -> None:
        self.control = control
        self._queue: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait until the poll may start; it is in flight inside the block."""
        if not self.control.request():
            fut = asyncio.get_running_loop().create_future()
            self._queue.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if not fut.cancelled():  # admitted as the device task was stopped: pass the slot on
                    self._leave()
                elif fut in self._queue:  # else _admit already dropped it
                    self._queue.remove(fut)
                    self.control.withdraw()
                raise
        try:
            yield
        finally:
            self._leave()

    async def tick(self) -> None:
        """Tell the control how late the loop runs, every TICK_S, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            self.control.observe_lag(max(0.0, loop.time() - due))
            self._admit()

    def _leave(self) -> None:
        self.control.finish()
        self._admit()

    def _admit(self) -> None:
        while self._queue:
            if self._queue[0].cancelled():  # its device task is stopping and will not take a slot
                self._queue.popleft()
                self.control.withdraw()
            elif self.control.grant():
                self._queue.popleft().set_result(None)
            else:
                break


class Poller:
    """Polls every target on its own cadence and hands each PollResult to `sink`."""

    def __init__(
        self,
        targets: list[PollTarget],
        sink: Sink,
        *,
        jitter_pct: float = 10.0,
        backoff_max_s: float = 300.0,
        seed: int | None = None,
        wall_clock: Callable[[], datetime] = utcnow,
        admission: AdmissionConfig | None = None,
    ) -> None:
        self._targets = {t.ref.device: t for t in targets}
        self._sink = sink
        self._jitter_pct = jitter_pct
        self._backoff_max_s = backoff_max_s
        self._rng = random.Random(seed)
        self._wall = wall_clock
        self.health: dict[str, DeviceHealth] = {d: DeviceHealth() for d in self._targets}
        self._tasks: list[asyncio.Task[None]] = []
        self._prepared = False
        self._admission = admission or AdmissionConfig()
        self._gate: _Gate | None = None

    @property
    def busy(self) -> bool:
        """True while a poll is in flight or waiting for admission (background work should step back)."""
        control = self.admission
        return control is not None and (control.in_flight > 0 or control.queued > 0)

    @property
    def admission(self) -> AdmissionControl | None:
        """The admission gate's state while run() or poll_once() is polling (limit, in flight, lag)."""
        return self._gate.control if self._gate is not None else None

    def note_access_granted(self, device: str, ts: datetime) -> None:
        """Tell a door's tracker that access was granted (badge event or trap) at `ts`."""
        target = self._targets.get(device)
        if target is not None and target.door is not None:
            target.door.note_access_granted(ts.timestamp())

    async def prepare(self) -> None:
        """Set up every reader before the first poll (idempotent)."""
        if not self._prepared:
            for t in self._targets.values():
                await t.reader.prepare()
            self._prepared = True

    async def poll_once(self, concurrency: int = 32) -> list[PollResult]:
        """Poll every device once, at most `concurrency` at a time, and return the results.

        Commissioning a whole site at once must not fire hundreds of requests in the same instant: the
        time a poll waits for the event loop would count against its deadline. The admission gate
        admits fewer when the loop runs late.
        """
        await self.prepare()
        config = self._admission
        config = replace(
            config,
            ceiling=concurrency,
            initial=min(config.initial, concurrency),
            floor=min(config.floor, concurrency),
        )
        async with self._gated(config):
            return list(await asyncio.gather(*(self._poll(t) for t in self._targets.values())))

    async def run(self) -> None:
        """Poll forever, one task per device, until cancelled."""
        await self.prepare()
        loop = asyncio.get_running_loop()
        now = loop.time()
        async with self._gated(self._admission):
            self._tasks = [
                asyncio.create_task(self._device_loop(t, now), name=f"poll:{t.ref.device}")
                for t in self._targets.values()
            ]
            try:
                await asyncio.gather(*self._tasks)
            finally:
                for task in self._tasks:
                    task.cancel()
                for task in self._tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def close(self) -> None:
        """Close every reader."""
        for t in self._targets.values():
            with contextlib.suppress(Exception):
                await t.reader.close()

    @contextlib.asynccontextmanager
    async def _gated(self, config: AdmissionConfig) -> AsyncIterator[None]:
        """Polls inside the block go through an admission gate whose ticker runs meanwhile."""
        loop = asyncio.get_running_loop()
        self._gate = _Gate(AdmissionControl(loop.time, config))
        ticker = asyncio.create_task(self._gate.tick(), name="poll:admission")
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _device_loop(self, target: PollTarget, start: float) -> None:
        loop = asyncio.get_running_loop()
        schedule = PollSchedule.start(
            start, target.interval_s, self._jitter_pct, self._backoff_max_s, self._rng
        )
        while True:
            delay = schedule.next_due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            result = await self._poll(target)
            if result.quality in (Quality.COMM_ERROR, Quality.AUTH_ERROR) and result.error:
                schedule.after_failure(loop.time())
            else:
                schedule.after_success(loop.time())
            try:
                await self._sink(result)
            except Exception:
                _LOG.exception("sink failed for %s", target.ref.device)

    async def _poll(self, target: PollTarget) -> PollResult:
        assert self._gate is not None, "polls run inside _gated()"
        # Waiting for admission is not part of the poll: its deadline and duration start once it is
        # admitted, so a saturated CPU delays polls instead of failing them.
        async with self._gate.slot():
            return await self._admitted_poll(target)

    async def _admitted_poll(self, target: PollTarget) -> PollResult:
        ts = self._wall()
        started = time.perf_counter()
        health = self.health[target.ref.device]
        health.polls += 1
        try:
            # The transport enforces per-request timeouts; this bounds the whole poll so that a
            # device answering each request just in time cannot hold its task for many intervals.
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the cancellation of a
            # stopping poller, whose device task would then never end.
            async with asyncio.timeout(target.deadline_s):
                metrics = await target.reader.read()
        except TransportError as exc:
            return self._failed(target, ts, started, exc.quality, f"{type(exc).__name__}: {exc}")
        except TimeoutError:
            return self._failed(
                target, ts, started, Quality.COMM_ERROR, "DeviceTimeout: poll deadline exceeded"
            )
        except Exception as exc:  # a bug in a decoder must not kill the device's task
            _LOG.exception("unexpected error polling %s", target.ref.device)
            return self._failed(target, ts, started, Quality.COMM_ERROR, f"{type(exc).__name__}: {exc}")
        duration = time.perf_counter() - started
        if target.door is not None:
            metrics = self._with_door_state(target.door, ts, metrics)
        if health.failures:
            down_for = (ts - health.last_ok).total_seconds() if health.last_ok else None
            _LOG.warning(
                "%s recovered after %d failed polls%s",
                target.ref.device,
                health.failures,
                f" ({down_for:.0f} s without data)" if down_for is not None else "",
            )
        # Reachable is not healthy: a device whose answers are mostly "not implemented" is a misfit.
        quality, note = device_quality(metrics)
        if quality is not health.quality and quality is not Quality.GOOD:
            _LOG.warning("%s answers, but %s", target.ref.device, note)
        health.failures = 0
        health.last_poll = health.last_ok = ts
        health.quality = quality
        health.error = note
        health.last_duration_s = duration
        health.known_metrics = tuple(m.name for m in metrics)
        return PollResult(
            ref=target.ref, ts=ts, metrics=tuple(metrics), duration_s=duration, error=note, quality=quality
        )

    def _failed(
        self, target: PollTarget, ts: datetime, started: float, quality: Quality, error: str
    ) -> PollResult:
        health = self.health[target.ref.device]
        if health.failures == 0:
            # Log the first failure once; later ones stay at debug until the device recovers
            # (Home Assistant's log-when-unavailable rule).
            _LOG.warning("%s unreachable: %s", target.ref.device, error)
        else:
            _LOG.debug("%s still unreachable (%d): %s", target.ref.device, health.failures + 1, error)
        health.failures += 1
        health.last_poll = ts
        health.quality = quality
        health.error = error
        health.last_duration_s = time.perf_counter() - started
        # Every metric the device had is reported with the failure's quality, so a dashboard shows a
        # gap flagged as comm_error/auth_error rather than silently holding the last value.
        metrics = tuple(Metric(name, None, quality) for name in health.known_metrics)
        return PollResult(
            ref=target.ref,
            ts=ts,
            metrics=metrics,
            duration_s=health.last_duration_s,
            error=error,
            quality=quality,
        )

    @staticmethod
    def _with_door_state(door: DoorTracker, ts: datetime, metrics: list[Metric]) -> list[Metric]:
        by_name = {m.name: m for m in metrics}

        def good(name: str) -> bool | None:
            m = by_name.get(name)
            return bool(m.value) if m is not None and m.quality is Quality.GOOD else None

        at = ts.timestamp()
        # A released lock (feedback input off) means the access controller unlocked the door for a
        # valid badge or a remote open: that is the grant that makes the next opening authorised.
        if good("lock_engaged") is False:
            door.note_access_granted(at)
        status = door.update(at, good("door_open"), good("rex"))
        if status.state == "unknown":
            return [*metrics, Metric("door_state", None, Quality.UNAVAILABLE)]
        return [*metrics, Metric("door_state", status.state)]


def is_door(ref: DeviceRef) -> bool:
    """True for devices whose contact readings feed a DoorTracker."""
    return ref.device_class is DeviceClass.DOOR
