"""Alerts benchmark: the rule engine's throughput and breach-to-delivery latency, each beside a reference.

    .venv/bin/python -m bench.alerts [--series 10000] [--rounds 20] [--breaches 24]

All from one run:
1. Rule evaluations per CPU-second of the pure engine (`alerts.engine.evaluate` with a `RuleIndex` of the
   shipped machine-room pack) over `--series` env sensors (temp_c and rh_pct each) in several rooms,
   round after round of new readings, a few sensors crossing thresholds (they fire, then resolve).
   An *evaluation* is one (sample, rule) pair the engine must judge: a rule indexed under the sample's
   metric whose scope matches the sample's device (for an env sensor: 9 rules per temp_c sample, 7 per
   rh_pct sample: the threshold, rate and dew point rules). Evaluations/s = evaluations / CPU-seconds
   spent in `evaluate` (process time, first round excluded: it creates every series). Samples/s too.
   Reference, same run, same samples: a bare Python loop comparing each sample's value with the level of
   each applicable rule (`for sample: for rule: if value > limit`): no state, no hysteresis, no hold,
   no dew point, no trend window, so it is the floor of what any Python evaluation costs.
   Target: >= 200,000 evaluations/s.
2. Breach-to-delivery latency at a 1 s poll: a private mosquitto, a simulated room of SHT20 sensors on
   Modbus TCP, the collector, the alerts process (a threshold rule, group_wait_s 0) and a signed webhook
   receiver, all real. Each breach sets one sensor's temperature above the limit in the simulator; the
   latency is from the value being on the Modbus wire to the receiver having verified the firing
   delivery. Then the value goes back below the clear level and the round waits for the resolved
   delivery. Reference, same broker: the raw MQTT round trip (paho QoS 1 publish → subscriber).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerts.engine import EngineState, RuleIndex, evaluate
from alerts.inputs import Labels, Sample
from alerts.pack import load_pack
from alerts.receiver import AlertReceiver, serve
from alerts.run import AlertsProcess
from collector.collect import run_collector
from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Value
from devices.registry import ProfileRegistry
from devices.sim.physics import DeviceDecl, RoomModel
from devices.sim.room import SimDeviceSpec, SimulatedRoom
from devices.wire import WireError, decode_poll, encode_poll
from siteconfig.alert_rules import DewpointRule, RateRule, ThresholdRule
from siteconfig.config import load_site
from testkit.services import Mosquitto, free_tcp_port

# ------------------------------------------------------------------------------------ 1. the engine

ENGINE_SITE = "bench"
ROOMS = 8  # mr1..mr8, each with zones row-a..row-e and racks
STEP_S = 10.0  # simulated seconds between rounds (a 10 s poll)
HOT_ROUNDS = 9  # a crossing block stays beyond its limit this many rounds (fires, then resolves)


def env_labels(n: int) -> list[Labels]:
    """Labels of `n` env sensors spread over ROOMS rooms, 5 zones and 20 racks a room, with tags."""
    out = []
    for i in range(n):
        room = f"mr{i % ROOMS + 1}"
        zone = f"row-{'abcde'[i // ROOMS % 5]}"
        rack = f"{zone[-1]}{i // (ROOMS * 5) % 20 + 1:02d}"
        tags = (("floor", "3F" if i % ROOMS < 4 else "4F"), ("vendor", "xy-md02"))
        out.append(Labels(ENGINE_SITE, room, f"th-{i:05d}", DeviceClass.ENV, zone, rack, tags))
    return out


def round_samples(
    labels: Sequence[Labels], base: Sequence[tuple[float, float]], rnd: int, t0: float, rng: random.Random
) -> list[Sample]:
    """One poll of every sensor at round `rnd`: temp_c and rh_pct near each sensor's base, plus noise.

    Blocks of n/1000 sensors (at least one) take turns beyond the limits for HOT_ROUNDS rounds: even
    blocks run hot (33.5 °C: temp-high, temp-high-critical and temp-rate fire), odd blocks humid (82 %:
    rh-high, rh-high-critical and the dew point rules fire); then they come back and resolve.
    """
    n = len(labels)
    ts = datetime.fromtimestamp(t0 + rnd * STEP_S, UTC)
    block = max(1, n // 1000)
    b = rnd // HOT_ROUNDS
    crossing = {(b * block + j) % n for j in range(block)}
    out: list[Sample] = []
    for i, lb in enumerate(labels):
        temp, rh = base[i]
        temp = round(temp + rng.uniform(-0.2, 0.2), 1)
        rh = round(rh + rng.uniform(-0.8, 0.8), 1)
        if i in crossing:
            if b % 2 == 0:
                temp = 33.5
            else:
                rh = 82.0
        out.append(Sample(lb, "temp_c", ts, temp))
        out.append(Sample(lb, "rh_pct", ts, rh))
    return out


@dataclass
class EngineResult:
    """What the engine benchmark measured."""

    series: int
    samples: int = 0
    evaluations: int = 0
    cpu_s: float = 0.0
    events: int = 0
    per_metric: dict[str, int] = field(default_factory=dict)
    naive_comparisons: int = 0
    naive_cpu_s: float = 0.0


def _limit(rule: object) -> float:
    """The level the naive loop compares with: a threshold's or dew point rule's value, a rate's change."""
    if isinstance(rule, ThresholdRule | DewpointRule):
        return rule.value
    if isinstance(rule, RateRule):
        return rule.change
    raise TypeError(f"no level for {rule!r}")


def _naive(samples: Sequence[Sample], limits: dict[str, list[tuple[bool, float]]]) -> int:
    """The reference: compare each sample's value with each applicable rule's level, nothing else."""
    hits = 0
    for s in samples:
        v = s.value
        for above, limit in limits[s.metric]:
            if above:
                if v > limit:  # type: ignore[operator]
                    hits += 1
            elif v < limit:  # type: ignore[operator]
                hits += 1
    return hits


def bench_engine(sensors: int, rounds: int, batch: int, seed: int = 1) -> EngineResult:
    """Evaluate `rounds` polls of `sensors` env sensors (plus one warm-up round that is not counted)."""
    index = RuleIndex(load_pack())
    labels = env_labels(sensors)
    rng = random.Random(seed)
    base = [(round(rng.uniform(20.5, 24.5), 1), round(rng.uniform(40.0, 50.0), 1)) for _ in labels]
    # Applicable rules per (metric, device): what `evaluate` calls a handler for, from the index itself.
    applicable: dict[tuple[str, Labels], int] = {}
    limits: dict[str, list[tuple[bool, float]]] = {}
    for metric in ("temp_c", "rh_pct"):
        for lb in labels:
            entries = [r for _h, r, scope in index.for_metric(metric) if scope is None or scope.matches(lb)]
            applicable[(metric, lb)] = len(entries)
        rules = [r for _h, r, scope in index.for_metric(metric) if scope is None or scope.matches(labels[0])]
        limits[metric] = [(getattr(r, "op", "above") != "below", _limit(r)) for r in rules]
    res = EngineResult(series=2 * sensors)
    res.per_metric = {m: applicable[(m, labels[0])] for m in ("temp_c", "rh_pct")}
    t0 = time.time() - (rounds + 1) * STEP_S
    state: EngineState | None = None
    for rnd in range(rounds + 1):
        samples = round_samples(labels, base, rnd, t0, rng)
        now = datetime.fromtimestamp(t0 + rnd * STEP_S + 0.5, UTC)
        size = batch or len(samples)
        c0 = time.process_time()
        for i in range(0, len(samples), size):
            state, events = evaluate(index, state, samples[i : i + size], now)
            if rnd:
                res.events += len(events)
        c1 = time.process_time()
        _naive(samples, limits)
        c2 = time.process_time()
        if rnd == 0:
            continue  # warm-up: every series is created in this round
        res.cpu_s += c1 - c0
        res.naive_cpu_s += c2 - c1
        res.samples += len(samples)
        res.evaluations += sum(applicable[(s.metric, s.labels)] for s in samples)
        res.naive_comparisons += sum(len(limits[s.metric]) for s in samples)
    return res


# --------------------------------------------------------------------------------- 2. the latency

HOOK_KEY = "bench-hook-key-Qv7"
HOOK_KEY_ENV = "ROOMGUARD_BENCH_HOOK_KEY"
PASSWORD_ENV = "ROOMGUARD_BENCH_MQTT_PASSWORD"
LIMIT_C, CLEAR_C = 30.0, 28.0
HOT_C, NORMAL_C = 35.0, 22.0
POLL_S = 1.0
_HEAD = re.compile(r"^\[(\w+)\] \S+ (\S+) [^/\s]*/(\S+)")


class ForcedRoomModel(RoomModel):
    """The room's physics with per-device overrides: `forced[device] = {"temp_c": 35.0}` wins."""

    def __init__(self, devices: Sequence[DeviceDecl], seed: int, start: float) -> None:
        super().__init__(devices, seed=seed, start=start)
        self.forced: dict[str, dict[str, Value]] = {}

    def values(self, device: str) -> dict[str, Value]:
        """The model's values with this device's overrides applied."""
        return {**super().values(device), **self.forced.get(device, {})}


def _site_yaml(path: Path, broker: Mosquitto, modbus_port: int, sensors: int, hook_url: str) -> None:
    devices = "".join(
        f"  - {{id: th-{u}, name: T{u}, room: mr1, profile: sht20-xy-md02, settings: {{resolution: x10}},"
        f" modbus: {{host: 127.0.0.1, port: {modbus_port}, unit_id: {u}}}}}\n"
        for u in range(1, sensors + 1)
    )
    path.write_text(
        f"""\
site: {{id: bench{os.getpid()}, name: Bench}}
rooms: [{{id: mr1, name: 機房一}}]
defaults: {{poll_interval_s: {POLL_S:g}}}
devices:
{devices}mqtt: {{host: 127.0.0.1, port: {broker.port}, username: {broker.username},
       password: {{env: {PASSWORD_ENV}}}}}
outbox: {{release: broker}}
alerts:
  default_rules: false
  rules:
    - {{id: hot, kind: threshold, severity: critical, scope: {{classes: [env]}}, metric: temp_c,
       op: above, value: {LIMIT_C:g}, clear: {CLEAR_C:g}}}
  channels:
    hook: {{type: webhook, url: "{hook_url}", key: {{env: {HOOK_KEY_ENV}}}, timeout_s: 5}}
  routes:
    - {{severities: [critical], channels: [hook]}}
  group_wait_s: 0
  # Each breach is one notification and the same sensors breach again and again: no summaries, no
  # flap damping, or the benchmark would measure those instead of the path.
  rate_limit: {{max_messages: 100000, window_s: 60}}
  flap_max_notifications: 100000
""",
        encoding="utf-8",
    )


class ReadingWatch:
    """A plain MQTT subscriber on the site's readings: when each device's temperature reached the broker."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[float, str, float, float]] = []  # (received, device, poll ts, temp_c)
        subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-watch")
        self.client.username_pw_set(broker.username, broker.password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("reading watcher did not subscribe")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        try:
            result, _seq = decode_poll(bytes(msg.payload))
        except WireError:
            return
        temp = next((m.value for m in result.metrics if m.name == "temp_c"), None)
        if isinstance(temp, int | float):
            with self.lock:
                self.seen.append((now, result.ref.device, result.ts.timestamp(), float(temp)))

    def first_hot(self, device: str, after: float) -> tuple[float, float] | None:
        """(received, poll ts) of the first reading of `device` above the limit polled after `after`."""
        with self.lock:
            for got, dev, ts, temp in self.seen:
                if dev == device and ts >= after and temp > LIMIT_C:
                    return got, ts
        return None

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Breach:
    """One breach's timeline (wall-clock seconds)."""

    device: str
    changed: float
    polled: float  # poll start of the first reading showing it
    published: float  # that reading at a plain subscriber
    delivered: float  # the firing delivery at the webhook receiver, signature verified


async def _until(cond: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {limit_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.005)


async def _delivery(got: list[tuple[float, str, str]], start: int, state: str, device: str) -> float:
    """When the receiver got the `state` delivery of `device` (among `got[start:]`), waiting for it."""

    def find() -> float | None:
        return next((t for t, s, d in got[start:] if s == state and d == device), None)

    await _until(lambda: find() is not None, 30, f"the {state} delivery of {device}")
    at = find()
    assert at is not None
    return at


async def bench_latency(work: Path, broker: Mosquitto, breaches: int, sensors: int) -> list[Breach]:
    """Breach → firing delivery, `breaches` times, over the real collector, broker and alerts process."""
    os.environ[PASSWORD_ENV] = broker.password
    os.environ[HOOK_KEY_ENV] = HOOK_KEY
    registry = ProfileRegistry.builtin()
    specs = [
        SimDeviceSpec(
            f"th-{u}",
            "env",
            "sht20-xy-md02",
            "modbus",
            "127.0.0.1",
            0,
            unit_id=u,
            settings=(("resolution", "x10"),),
        )
        for u in range(1, sensors + 1)
    ]
    room = SimulatedRoom(specs, registry, tick_s=1.0, seed=7)
    # SimulatedRoom serves `room.model`; this one takes per-device overrides (the scenarios only ramp).
    model = ForcedRoomModel([DeviceDecl(s.id, s.device_class, s.zone) for s in specs], 7, time.time())
    room.model = model
    await room.start()
    deliveries: list[tuple[float, str, str]] = []  # (received, state, device)

    def show(text: str) -> None:
        m = _HEAD.match(text)
        if m:
            deliveries.append((time.time(), m.group(1).lower(), m.group(3)))

    receiver = AlertReceiver(HOOK_KEY, show)
    hook_port = free_tcp_port()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(serve(receiver, "127.0.0.1", hook_port, stop), name="receiver")]
    _host, modbus_port = room.endpoint("th-1")
    site_path = work / "site.yaml"
    _site_yaml(site_path, broker, modbus_port, sensors, f"http://127.0.0.1:{hook_port}/hook")
    site = load_site(site_path)
    watch = ReadingWatch(broker, f"{site.mqtt.topic_prefix}/{site.site.id}/+/+/readings")
    proc = AlertsProcess(site, work / "alerts-state")
    tasks.append(asyncio.create_task(proc.run(stop), name="alerts"))
    tasks.append(asyncio.create_task(run_collector(site, work / "collector-state", stop), name="collector"))
    out: list[Breach] = []
    try:
        await _until(proc.consumer.connected.is_set, 30, "the alerts process connected")
        await _until(lambda: len(watch.seen) >= 3 * sensors, 30, "readings of every sensor")
        rng = random.Random(3)
        for i in range(breaches):
            device = specs[i % sensors].id
            await asyncio.sleep(rng.uniform(0.0, POLL_S))  # a change lands anywhere in the poll cycle
            n = len(deliveries)
            model.forced[device] = {"temp_c": HOT_C}
            await room.tick()  # on the wire now, as the simulator's scenario API does it
            changed = time.time()
            delivered = await _delivery(deliveries, n, "firing", device)
            hot = watch.first_hot(device, changed - POLL_S)
            assert hot is not None, "the firing reading was not seen by the watcher"
            out.append(Breach(device, changed, hot[1], hot[0], delivered))
            n = len(deliveries)
            model.forced[device] = {"temp_c": NORMAL_C}
            await room.tick()
            await _delivery(deliveries, n, "resolved", device)
            del model.forced[device]
    finally:
        stop.set()
        for t in tasks:
            await asyncio.wait_for(t, 30)
        watch.close()
        await room.stop()
    return out


def _reading_payload() -> bytes:
    """A `roomguard.readings/1` message of one SHT20 poll: the size of what the collector publishes."""
    ref = DeviceRef("bench", "mr1", "th-1", DeviceClass.ENV, "sht20-xy-md02")
    poll = PollResult(ref, datetime.now(UTC), (Metric("temp_c", 22.4), Metric("rh_pct", 45.1)))
    return encode_poll(poll, 1)


def mqtt_round_trip(broker: Mosquitto, payload: bytes, n: int) -> list[float]:
    """Seconds from a paho QoS 1 publish to a paho subscriber having it, one message at a time."""
    got = threading.Event()
    subscribed = threading.Event()
    received = [0.0]

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        received[0] = time.perf_counter()
        got.set()

    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-rtt-sub")
    sub.username_pw_set(broker.username, broker.password)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("bench/rtt", qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.loop_start()
    subscribed.wait(10)
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-rtt-pub")
    pub.username_pw_set(broker.username, broker.password)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    out: list[float] = []
    try:
        for _ in range(n + 20):
            got.clear()
            sent = time.perf_counter()
            pub.publish("bench/rtt", payload, qos=1)
            if not got.wait(5):
                raise RuntimeError("raw MQTT round trip: message lost")
            out.append(received[0] - sent)
            time.sleep(0.002)
    finally:
        for c in (pub, sub):
            c.loop_stop()
            c.disconnect()
    return out[20:]  # the first ones warm up connections and caches


# ------------------------------------------------------------------------------------------- main


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`."""
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))]


def main() -> None:
    """Run both benchmarks and print our figures beside the references."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000, help="env sensors in the engine benchmark")
    ap.add_argument("--rounds", type=int, default=20, help="polls of every sensor (plus one warm-up)")
    ap.add_argument("--batch", type=int, default=0, help="samples per evaluate call (0: one call per poll)")
    ap.add_argument("--breaches", type=int, default=24, help="breaches in the latency benchmark")
    ap.add_argument("--sensors", type=int, default=4, help="simulated SHT20 sensors in the latency benchmark")
    ap.add_argument("--rtt", type=int, default=500, help="raw MQTT round trips for the reference")
    ap.add_argument("--skip", default="", help="comma list of engine,latency to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if "engine" not in skip:
        r = bench_engine(args.series, args.rounds, args.batch)
        ours = r.evaluations / r.cpu_s
        naive = r.naive_comparisons / r.naive_cpu_s
        calls = "one evaluate call per poll" if not args.batch else f"{args.batch} samples per evaluate call"
        print(
            f"Rule engine, machine-room pack, {args.series} env sensors ({r.series} series) in {ROOMS} "
            f"rooms, {args.rounds} polls {STEP_S:g} s apart ({r.events} alert events), {calls}:"
        )
        print(
            "  an evaluation = one (sample, rule) pair whose rule is indexed under the sample's metric and "
            f"scoped to its device ({r.per_metric['temp_c']} per temp_c, {r.per_metric['rh_pct']} per "
            "rh_pct sample); CPU time of evaluate only"
        )
        ns_ours, ns_bare = r.cpu_s / r.samples * 1e9, r.naive_cpu_s / r.samples * 1e9
        print(
            f"  roomguard evaluate()            {ours:11,.0f} evaluations/s  {r.samples / r.cpu_s:9,.0f} "
            f"samples/s  ({r.evaluations:,} in {r.cpu_s:.2f} CPU-s; target >= 200,000)"
        )
        print(
            f"  bare Python 'if value > limit'  {naive:11,.0f} comparisons/s  "
            f"{r.samples / r.naive_cpu_s:9,.0f} samples/s  ratio roomguard/bare = {ours / naive:.3f} "
            f"(per sample: bare {ns_bare:,.0f} ns, roomguard {ns_ours:,.0f} ns)",
            flush=True,
        )
    if "latency" not in skip:
        work = Path(tempfile.mkdtemp(prefix="roomguard-bench-alerts-"))
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        try:
            breaches = asyncio.run(bench_latency(work, broker, args.breaches, args.sensors))
            rtt = mqtt_round_trip(broker, _reading_payload(), args.rtt)
        finally:
            broker.stop()
            shutil.rmtree(work, ignore_errors=True)
        total = [b.delivered - b.changed for b in breaches]
        wait = [max(0.0, b.polled - b.changed) for b in breaches]
        pub = [b.published - max(b.polled, b.changed) for b in breaches]
        alert = [b.delivered - b.published for b in breaches]

        def fmt(xs: Sequence[float], digits: int = 0) -> str:
            p50, p99 = statistics.median(xs) * 1000, pct(xs, 0.99) * 1000
            return f"p50 {p50:6.{digits}f} ms, p99 {p99:6.{digits}f} ms"

        print(
            f"Breach → firing webhook delivered, poll interval {POLL_S:g} s, {len(breaches)} breaches over "
            f"{args.sensors} SHT20 sensors (Modbus TCP simulator → collector → mosquitto → alerts → webhook):"
        )
        print(f"  roomguard, change → firing delivered      {fmt(total)}  (max {max(total) * 1000:.0f} ms)")
        print(f"    change → poll start (bounded by poll)   {fmt(wait)}")
        print(f"    poll start → reading at a subscriber    {fmt(pub)}")
        print(f"    reading at a subscriber → webhook       {fmt(alert)}")
        print(
            f"  raw MQTT QoS 1 publish → subscriber       {fmt(rtt, 2)}  ({len(rtt)} messages, same broker)"
        )


if __name__ == "__main__":
    main()
