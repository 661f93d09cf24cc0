"""The collector's MQTT publisher: its own status on the bus, and ingest's delivery confirmations.

Ingest publishes, after each batch is stored, the seq ranges it wrote per device on
`{prefix}/{site}/_ingest/{id}/confirmed`; this publisher subscribes there and deletes those readings
from the outbox (bus/outbox.py, `release: archive`). Readings the broker acknowledged but ingest
never confirmed, while it confirmed readings published after them, are put back in line
(`republish_lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime

from bus.backoff import RateLimit
from bus.broker import BrokerSettings
from bus.outbox import Outbox, OutboxError
from bus.publisher import BACKGROUND_PAUSE_S, MqttPublisher
from devices.wire import DeviceStatus, WireError, decode_confirm, encode_status

_LOG = logging.getLogger("collector.collect")
# A reading the broker acknowledged this long ago, while ingest has confirmed readings published after
# it, was lost on the way: a broker that crashed before saving it, or one that came back empty and took
# our republished backlog before ingest had subscribed again. It is published again. The broker hands
# messages on in order and ingest stores them within about a second of receiving them, so 10 s leaves a
# wide margin (a republished duplicate would cost nothing but a rewrite anyway).
LOST_AFTER_S = 10.0
# Confirmed readings are deleted in slices of at most CONFIRM_SLICE, as many slices per transaction as fit
# in CONFIRM_BUDGET_S: a 5,000-reading confirmation deleted in one go held the event loop for half a
# second, and a poll waits for the loop at each of its steps — polls that take turns on one Modbus
# gateway add those waits up (50 devices x 3 steps x 20 ms would be 3 s for a 1 s cadence).
CONFIRM_SLICE = 25
CONFIRM_BUDGET_S = 0.004


class CollectorPublisher(MqttPublisher):
    """MqttPublisher that announces the collector's state and hears ingest's delivery confirmations."""

    def __init__(
        self, settings: BrokerSettings, outbox: Outbox, status_topic: str, confirm_topic: str, site: str
    ) -> None:
        """Publish `online` on `status_topic` after every (re)connect; subscribe to `confirm_topic`."""
        self.confirm_topic = confirm_topic
        self.site = site
        self.confirmed = 0  # messages deleted from the outbox on ingest's confirmation
        self._bad_confirm_log = RateLimit(60.0)
        self._to_confirm: deque[tuple[str, int, int]] = deque()
        self._confirming: asyncio.Task[None] | None = None
        super().__init__(settings, outbox)
        self.outbox: Outbox = outbox
        self.status_topic = status_topic
        self.announce_on_connect(
            lambda: (status_topic, encode_status(DeviceStatus("online", datetime.now(UTC))))
        )
        self.subscribe(confirm_topic, self._on_confirm)

    def _on_confirm(self, topic: str, payload: bytes) -> None:
        """A confirmation from ingest: the readings it names are in the database, drop them."""
        try:
            site, streams = decode_confirm(payload)
        except WireError as exc:
            ok, _ = self._bad_confirm_log.allow()
            if ok:
                _LOG.warning("ignored a malformed confirmation on %s: %s", topic, exc)
            return
        if site != self.site or self._stopping:
            return
        for stream, ranges in streams.items():
            for first, last in ranges:
                # Split into slices: one confirmation may cover a whole backlog (thousands of rows).
                for lo in range(first, last + 1, CONFIRM_SLICE):
                    self._to_confirm.append((stream, lo, min(last, lo + CONFIRM_SLICE - 1)))
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.get_running_loop().create_task(self._apply_confirmations())

    async def _apply_confirmations(self) -> None:
        """Delete confirmed readings, one transaction of about CONFIRM_BUDGET_S per loop turn.

        As many slices go into a transaction as that budget allows (measured, not guessed: a slice of 3 KB
        genset readings costs ten times one of 0.3 KB sensor readings), so a backlog's confirmations cost
        few transactions and still never hold the loop a poll is waiting for.
        """
        per_turn = 1
        while self._to_confirm:
            batch = [self._to_confirm.popleft() for _ in range(min(per_turn, len(self._to_confirm)))]
            started = time.perf_counter()
            try:
                self.confirmed += self.outbox.confirm(batch)
            except OutboxError:
                _LOG.exception("cannot drop confirmed readings from the outbox; they go again later")
            spent = time.perf_counter() - started
            if spent < CONFIRM_BUDGET_S / 2:
                per_turn = min(per_turn * 2, 64)
            elif spent > CONFIRM_BUDGET_S:
                per_turn = max(per_turn // 2, 1)
            await asyncio.sleep(BACKGROUND_PAUSE_S if self.yield_to() else 0)

    def republish_lost(self, now: float) -> int:
        """Put readings ingest skipped back in line (see LOST_AFTER_S); how many."""
        lost = self.outbox.unpublish_lost(now - LOST_AFTER_S)
        if lost:
            _LOG.warning(
                "%d message(s) acknowledged by the broker never reached the database while later "
                "ones did (lost by the broker?): publishing them again",
                lost,
            )
            self.republished += lost
            self.rewind()
        return lost

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Stop deleting confirmed readings (those left are confirmed again later), then disconnect."""
        self._stopping = True
        if self._confirming is not None:
            self._confirming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._confirming
        await super().stop(flush_timeout_s)

    async def announce_offline(self, reason: str, timeout_s: float = 3.0) -> bool:
        """Publish retained `offline` with `reason` and wait for its PUBACK; False if not delivered."""
        if not self.connected.is_set():
            return False
        payload = encode_status(DeviceStatus("offline", datetime.now(UTC), reason))
        info = self.publish_now(self.status_topic, payload, retain=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(info.wait_for_publish, timeout_s)
        return info.is_published()


__all__ = ["LOST_AFTER_S", "CollectorPublisher"]
