"""The durable consumer against a real mosquitto: a batch is acked only when its handler says it is done;
anything else comes back, to the same client id, after a restart — the contract every consuming package
(ingest now, alerts and compliance later) relies on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bus.broker import BrokerSettings
from bus.consumer import ConsumerSettings, DurableConsumer, Message
from testkit.services import Mosquitto

pytestmark = pytest.mark.integration
TOPIC = "roomguard/v1/t-consumer/+/+/events"


def _publish(
    broker: Mosquitto, payloads: list[bytes], topic: str = "roomguard/v1/t-consumer/r1/d1/events"
) -> None:
    """Plain paho QoS 1 publisher (the other side of the bus)."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"pub-{time.monotonic_ns()}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set(broker.username, broker.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for info in [client.publish(topic, p, qos=1) for p in payloads]:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


async def _until(cond: Callable[[], bool], limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _consumer(
    broker: Mosquitto, handler: Any, client_id: str, **kw: Any
) -> AsyncIterator[DurableConsumer]:
    settings = ConsumerSettings(topic=TOPIC, batch_delay_s=0.1, session_expiry_s=120, **kw)
    brk = BrokerSettings(broker.host, broker.port, client_id, broker.username, broker.password)
    consumer = DurableConsumer(brk, settings, name="test-consumer")
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(handler, stop))
    await _until(lambda: consumer.state.connected)
    await asyncio.sleep(0.3)  # the SUBACK follows the CONNACK
    try:
        yield consumer
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


class Recorder:
    """A handler that records what it saw and answers `done` (True: ack the batch)."""

    def __init__(self, done: bool) -> None:
        self.done = done
        self.seen: list[bytes] = []

    async def __call__(self, batch: list[Message], stop: asyncio.Event, deadline: float | None) -> bool:
        self.seen.extend(m.payload for m in batch)
        return self.done


async def test_unfinished_batches_come_back_and_finished_ones_do_not(mosquitto: Mosquitto) -> None:
    client_id = f"t-durable-{time.monotonic_ns()}"
    payloads = [f"event {i}".encode() for i in range(30)]
    # The session must exist before the messages, as a deployed consumer's does.
    async with _consumer(mosquitto, Recorder(done=True), client_id):
        pass
    failing = Recorder(done=False)
    async with _consumer(mosquitto, failing, client_id) as consumer:
        await asyncio.to_thread(_publish, mosquitto, payloads)
        await _until(lambda: len(failing.seen) >= 30)
        assert consumer.backlog == 0  # handed over, just not acked
    assert sorted(failing.seen) == sorted(payloads)
    # A restart with the same client id: the broker delivers every unacked message again.
    working = Recorder(done=True)
    async with _consumer(mosquitto, working, client_id):
        await _until(lambda: len(working.seen) >= 30)
        await asyncio.sleep(0.5)  # the acks go out
    assert sorted(working.seen) == sorted(payloads)
    # Acked: nothing comes back the next time.
    after = Recorder(done=True)
    async with _consumer(mosquitto, after, client_id):
        await asyncio.sleep(1.0)
    assert after.seen == []


async def test_batches_are_bounded_and_messages_received_while_stopping_are_handled(
    mosquitto: Mosquitto,
) -> None:
    client_id = f"t-batches-{time.monotonic_ns()}"
    sizes: list[int] = []

    async def handler(batch: list[Message], stop: asyncio.Event, deadline: float | None) -> bool:
        sizes.append(len(batch))
        return True

    async with _consumer(mosquitto, handler, client_id, batch_size=7) as consumer:
        await asyncio.to_thread(_publish, mosquitto, [b"x"] * 40)
        await _until(lambda: sum(sizes) >= 40)
        assert consumer.received == 40
    assert max(sizes) <= 7
    assert sum(sizes) == 40
