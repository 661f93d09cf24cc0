"""paho driven from the asyncio event loop (bus/mqtt_loop.py), against a real mosquitto."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.mqtt_loop import MqttLoopDriver
from testkit.services import Mosquitto, free_tcp_port

pytestmark = pytest.mark.integration


class Probe:
    """A paho client whose callbacks record what happened and on which thread."""

    def __init__(self, broker: Mosquitto, port: int | None = None, keepalive: int = 30) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="loop-probe")
        self.client.username_pw_set(broker.username, broker.password)
        self.client.connect_async(broker.host, port or broker.port, keepalive=keepalive)
        self.threads: set[int] = set()
        self.connects = 0
        self.disconnects = 0
        self.acked: list[int] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.driver = MqttLoopDriver(self.client, "probe", backoff_first_s=0.2, backoff_cap_s=0.5)

    def _on_connect(self, *args: Any) -> None:
        self.threads.add(threading.get_ident())
        self.connects += 1
        self.driver.connected()

    def _on_disconnect(self, *args: Any) -> None:
        self.threads.add(threading.get_ident())
        self.disconnects += 1

    def _on_publish(self, client: Any, userdata: Any, mid: int, *args: Any) -> None:
        self.threads.add(threading.get_ident())
        self.acked.append(mid)


async def _until(cond: Callable[[], bool], limit_s: float = 20.0) -> None:
    async with asyncio.timeout(limit_s):
        while not cond():  # noqa: ASYNC110 - the conditions are paho client state
            await asyncio.sleep(0.02)


async def test_publishes_and_every_callback_runs_on_the_event_loop(mosquitto_private: Mosquitto) -> None:
    probe = Probe(mosquitto_private)
    probe.driver.start()
    try:
        await _until(lambda: probe.connects == 1)
        mids = [probe.client.publish(f"t/{i}", b"x" * 300, qos=1).mid for i in range(2000)]
        await _until(lambda: len(probe.acked) == 2000)
        assert sorted(probe.acked) == sorted(mids)
        assert probe.threads == {threading.get_ident()}  # no paho network thread
        assert not [t for t in threading.enumerate() if t.name.startswith("paho-mqtt-client")]
    finally:
        await probe.driver.stop()
    assert probe.disconnects == 1  # stop() sent DISCONNECT


async def test_reconnects_after_the_broker_comes_back(mosquitto_private: Mosquitto) -> None:
    probe = Probe(mosquitto_private)
    probe.driver.start()
    try:
        await _until(lambda: probe.connects == 1)
        mosquitto_private.stop()
        await _until(lambda: probe.disconnects == 1)
        await asyncio.sleep(1.5)  # several refused attempts, backing off
        assert probe.connects == 1
        mosquitto_private.start()
        await _until(lambda: probe.connects == 2, 10)
        info = probe.client.publish("t/after", b"1", qos=1)
        await _until(lambda: info.mid in probe.acked)
    finally:
        await probe.driver.stop()


async def test_keepalive_pings_hold_an_idle_connection(mosquitto_private: Mosquitto) -> None:
    # mosquitto drops a client silent for 1.5 x keepalive (checked lazily: without PINGREQs a 1 s client
    # is gone within about 5 s); only the driver's loop_misc sends them.
    probe = Probe(mosquitto_private, keepalive=1)
    probe.driver.start()
    try:
        await _until(lambda: probe.connects == 1)
        await asyncio.sleep(6)
        assert (probe.connects, probe.disconnects) == (1, 0)
    finally:
        await probe.driver.stop()


async def test_stop_with_no_broker_returns_at_once(mosquitto_private: Mosquitto, tmp_path: Path) -> None:
    probe = Probe(mosquitto_private, port=free_tcp_port())  # nothing listens there
    probe.driver.start()
    await asyncio.sleep(1.0)
    start = time.monotonic()
    await probe.driver.stop()
    assert time.monotonic() - start < 1.0
    assert probe.connects == 0
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("mqtt-")]
    assert not tasks
