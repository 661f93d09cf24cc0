"""Runs roomguard's poller alone in a process for the scale benchmark and reports its CPU use.

argv[1] is JSON: {"interval": 5, "seconds": 30, "timeout": 2,
"devices": [["modbus", port, unit, model] | ["snmp", port, community, model], ...]}.
Prints a JSON line when the targets are prepared ({"prepared_s": ...}), then one with the figures of
the measured window: cpu_s, wall_s, polls, good, devices, needed_per_s, starved (devices polled less
often than their interval), failures, loop lag and the admission gate's state, and kept_up.

The figures are taken by a thread on wall-clock time, so a poller that cannot keep up (its event
loop saturated) still reports what it managed instead of overrunning its time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bus.process import tune_gc_for_polling
from collector.poller import Poller, PollTarget
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusTcpTransport
from devices.reader import DeviceReader
from devices.reading import DeviceRef, PollResult, Quality
from devices.registry import ProfileRegistry
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV2c

LAG_TICK_S = 0.05


MODBUS_MIX = ["dse-gencomm", "sht20-xy-md02", "schneider-inrow-sc", "apc-smartups-modbus", "modbus-door-io"]
SNMP_MIX = ["rfc1628-ups", "netbotz-env", "geist-watchdog15", "liebert-gp-crac"]


def scale_spec(n: int) -> tuple[dict[str, Any], list[tuple[str, int, Any, str]]]:
    """60 % Modbus (200 units per simulated gateway), 40 % SNMP (snmpd, 100 communities each)."""
    n_modbus = n * 6 // 10
    modbus_groups: list[list[list[Any]]] = []
    snmp_groups: list[list[list[Any]]] = []
    layout: list[tuple[str, int, Any, str]] = []
    for i in range(n_modbus):
        g, unit = divmod(i, 200)
        if g == len(modbus_groups):
            modbus_groups.append([])
        model = MODBUS_MIX[i % len(MODBUS_MIX)]
        modbus_groups[g].append([unit + 1, model])
        layout.append(("modbus", g, unit + 1, model))
    by_model: dict[str, list[list[Any]]] = {}
    for i in range(n - n_modbus):
        model = SNMP_MIX[i % len(SNMP_MIX)]
        by_model.setdefault(model, []).append([f"dev{i}", model])
    for model, devs in by_model.items():
        for start in range(0, len(devs), 100):
            snmp_groups.append(devs[start : start + 100])
            layout.extend(("snmp", len(snmp_groups) - 1, c, model) for c, _ in devs[start : start + 100])
    spec = {"modbus": [{"units": u} for u in modbus_groups], "snmp": [{"devices": d} for d in snmp_groups]}
    return spec, layout


def run_worker(job: dict[str, Any], limit_s: float) -> tuple[dict[str, Any] | None, str]:
    """The worker's figures, or None and why there are none (it overran `limit_s`, it crashed)."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "bench.pollworker", json.dumps(job)],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=limit_s,
        )
    except subprocess.TimeoutExpired as exc:
        seen = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return None, f"no figures within {limit_s:.0f} s (worker said: {seen.strip()[-300:] or 'nothing'})"
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines or "polls" not in lines[-1]:
        return None, f"worker failed (exit {out.returncode}): {out.stderr.strip()[-300:]}"
    return {**lines[0], **lines[-1]}, ""


class Meter:
    """Counts results on the event loop; the reporting thread copies the counts (atomic under the GIL)."""

    def __init__(self) -> None:
        self.polls = 0
        self.good = 0
        self.by_device: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.lags: list[tuple[float, float]] = []  # (perf_counter, how late a 50 ms timer ran)

    async def sink(self, result: PollResult) -> None:
        """Poller sink: count the result."""
        self.polls += 1
        self.by_device[result.ref.device] = self.by_device.get(result.ref.device, 0) + 1
        if result.quality is Quality.GOOD:
            self.good += 1
        else:
            key = f"{result.ref.model}: {(result.error or '').split(':')[0]}"
            self.failures[key] = self.failures.get(key, 0) + 1

    async def tick(self) -> None:
        """Record how late the event loop runs."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_TICK_S
            await asyncio.sleep(LAG_TICK_S)
            self.lags.append((time.perf_counter(), max(0.0, loop.time() - due)))

    def snapshot(self) -> tuple[int, int, dict[str, int], dict[str, int]]:
        """The counts now (called from the reporting thread)."""
        return self.polls, self.good, dict(self.by_device), dict(self.failures)


def build_targets(spec: dict[str, Any]) -> list[PollTarget]:
    """Poll targets for the simulated devices of `spec`."""
    registry = ProfileRegistry.builtin()
    interval = float(spec["interval"])
    timeout = float(spec.get("timeout", 2.0))
    targets: list[PollTarget] = []
    for i, (proto, port, key, model) in enumerate(spec["devices"]):
        profile = registry.get(model)
        reader: DeviceReader
        if proto == "modbus":
            # One connection per device, as separate Modbus TCP devices on a LAN would have.
            reader = ModbusReader(profile, ModbusTcpTransport("127.0.0.1", port, timeout), int(key))  # type: ignore[arg-type]
        else:
            target = SnmpTarget("127.0.0.1", port, timeout, 0, SnmpV2c(str(key)))
            reader = SnmpReader(profile, target)  # type: ignore[arg-type]
        ref = DeviceRef("bench", "r", f"d{i}", profile.device_class, profile.model)
        targets.append(PollTarget(ref=ref, reader=reader, interval_s=interval, timeout_s=timeout, retries=0))
    return targets


def report(spec: dict[str, Any], meter: Meter, poller: Poller, targets: list[PollTarget]) -> dict[str, Any]:
    """Wait out the warm-up, measure whole intervals and return the figures (runs in a thread)."""
    interval, seconds = float(spec["interval"]), float(spec["seconds"])
    # Warm-up: connect everything and let the start phases spread, then measure whole intervals.
    time.sleep(interval * 1.5)
    polls0, good0, by0, fail0 = meter.snapshot()
    gate = poller.admission
    cuts0 = gate.decreases if gate else 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    polls1, good1, by1, fail1 = meter.snapshot()
    lags = sorted(lag for t, lag in list(meter.lags) if wall0 <= t <= wall1)
    expected = int(seconds / interval)
    # A grid point on the window's edge may fall just outside it: one poll fewer is not "behind".
    starved = sum(1 for t in targets if by1.get(t.ref.device, 0) - by0.get(t.ref.device, 0) < expected - 1)
    failures = {k: n - fail0.get(k, 0) for k, n in fail1.items() if n > fail0.get(k, 0)}
    polls, good = polls1 - polls0, good1 - good0
    return {
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "polls": polls,
        "good": good,
        "devices": len(targets),
        "needed_per_s": len(targets) / interval,
        "starved": starved,
        "failures": failures,
        # No lag sample in the window means the loop never got round to the ticker: report the window.
        "lag_p50_s": lags[len(lags) // 2] if lags else wall1 - wall0,
        "lag_max_s": lags[-1] if lags else wall1 - wall0,
        "gate_limit": gate.limit if gate else None,
        "gate_queued": gate.queued if gate else None,
        "gate_cuts": (gate.decreases - cuts0) if gate else None,
        "kept_up": polls > 0 and starved == 0 and good == polls,
    }


async def main(spec: dict[str, Any]) -> None:
    """Poll the simulated devices until the reporting thread has printed its figures and exits."""
    tune_gc_for_polling()  # as the composition root does for `roomguard collect` and `run`
    targets = build_targets(spec)
    meter = Meter()
    poller = Poller(targets, meter.sink, jitter_pct=100, seed=1)
    started = time.perf_counter()
    await poller.prepare()
    print(json.dumps({"prepared_s": time.perf_counter() - started}), flush=True)

    def reporter() -> None:
        print(json.dumps(report(spec, meter, poller, targets)), flush=True)
        # The poller is not stopped cleanly: a saturated loop could take minutes to wind a thousand
        # device tasks down, and the figures are out.
        os._exit(0)

    threading.Thread(target=reporter, name="report", daemon=True).start()
    ticker = asyncio.create_task(meter.tick())
    try:
        await poller.run()
    finally:
        ticker.cancel()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
