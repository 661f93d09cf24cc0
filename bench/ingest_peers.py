"""The peers of the ingest benchmark: a raw paho QoS 1 loop and direct line-protocol writes."""

from __future__ import annotations

import threading
import time
import urllib.request

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def raw_paho_rate(
    host: str, port: int, username: str, password: str, payload: bytes, n: int, *, mqtt5: bool = False
) -> float:
    """Messages/s of a bare paho QoS 1 publish → subscribe loop on the broker (the transport's ceiling).

    `mqtt5` speaks MQTT 5 as roomguard does with a broker that has it (paho builds a Properties object per
    packet there, which costs it throughput); the default is paho's own default, 3.1.1.
    """
    protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
    done = threading.Event()
    got = [0]
    subscribed = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        got[0] += 1
        if got[0] >= n:
            done.set()

    sub = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-raw-sub", protocol=protocol
    )
    sub.username_pw_set(username, password)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("bench/raw/#", qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_message = on_message
    sub.connect(host, port)
    sub.loop_start()
    subscribed.wait(10)
    pub = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-raw-pub", protocol=protocol
    )
    pub.username_pw_set(username, password)
    window = 100  # the same window as roomguard's publisher
    pub.max_inflight_messages_set(window)
    # At most `window` unacknowledged publishes, as roomguard keeps: handing paho all n at once makes
    # each PUBACK scan paho's whole queue of waiting messages, quadratic in n, and the loop then
    # measures that instead of the transport.
    room = threading.Semaphore(window)
    pub.on_publish = lambda *a: room.release()
    pub.connect(host, port)
    pub.loop_start()
    start = time.perf_counter()
    for i in range(n):
        room.acquire()
        pub.publish(f"bench/raw/{i % 50}", payload, qos=1)
    done.wait(120)
    rate = got[0] / (time.perf_counter() - start)
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return rate


def direct_write_rate(url: str, database: str, lines: list[str], batch: int = 5000) -> float:
    """Lines/s of line-protocol POSTs straight to InfluxDB 1.x /write (no broker, no outbox)."""
    start = time.perf_counter()
    for i in range(0, len(lines), batch):
        body = "\n".join(lines[i : i + batch]).encode()
        req = urllib.request.Request(f"{url}/write?db={database}&precision=ns", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 204
    return len(lines) / (time.perf_counter() - start)
