"""Polling benchmark: roomguard next to the raw libraries and native tools, all from one run.

    .venv/bin/python -m bench.poll [--seconds 3] [--scale 250,500,1000,1500] [--scale-seconds 20]

1. Modbus requests/s reading a DSE genset profile from one simulated device: roomguard's ModbusReader
   vs a raw pymodbus client loop issuing the same requests vs a libmodbus C loop (native reference).
2. SNMP varbinds/s walking hrSWRunTable of a real net-snmp `snmpd`: roomguard's SnmpReader vs a raw
   pysnmp bulk_walk_cmd loop vs net-snmp `snmpbulkwalk`.
3. How many mixed simulated devices roomguard polls at a 5 s interval using < 50 % of one core
   (simulators run in another process; only the poller's CPU is counted).
Targets: roomguard >= 0.8 x the raw library loop for both protocols; >= 1,000 devices.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pollworker import run_worker, scale_spec

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A free loopback port."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimHost:
    """Simulated devices in a child process (bench/simhost.py)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "bench.simhost", json.dumps(spec)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"simulator host failed to start: {line!r}")
        self.ports: dict[str, list[int]] = json.loads(line[6:])

    def close(self) -> None:
        """Stop the child."""
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------- Modbus
async def _roomguard_modbus(port: int, seconds: float) -> tuple[float, list[tuple[str, int, int]]]:
    from devices.modbus_reader import ModbusReader
    from devices.modbus_transport import ModbusTcpTransport
    from devices.registry import ProfileRegistry

    profile = ProfileRegistry.builtin().get("dse-gencomm")
    transport = ModbusTcpTransport("127.0.0.1", port, 2.0)
    reader = ModbusReader(profile, transport, 1)  # type: ignore[arg-type]
    await reader.read()
    polls, end = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        await reader.read()
        polls += 1
    rate = polls * reader.read_count / (time.perf_counter() - t0)
    await transport.close()
    return rate, reader.plan()


async def _raw_pymodbus(port: int, plan: list[tuple[str, int, int]], seconds: float) -> float:
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    calls = [
        (client.read_holding_registers if t == "holding" else client.read_input_registers, a, c)
        for t, a, c in plan
    ]
    n, end = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        for fn, a, c in calls:
            rr = await fn(a, count=c, device_id=1)
            if rr.isError():
                raise RuntimeError(rr)
            n += 1
    rate = n / (time.perf_counter() - t0)
    client.close()
    return rate


def _libmodbus(port: int, plan: list[tuple[str, int, int]], seconds: float) -> float | None:
    exe = Path(tempfile.gettempdir()) / "roomguard-modbus-loop"
    src = ROOT / "bench" / "modbus_loop.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "libmodbus"], capture_output=True, text=True
        )
        if flags.returncode != 0:
            return None
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src), *flags.stdout.split()], check=True)
    blocks = [("i" if t == "input" else "") + f"{a}:{c}" for t, a, c in plan]
    out = subprocess.run(
        [str(exe), "127.0.0.1", str(port), "1", str(seconds), *blocks],
        capture_output=True,
        text=True,
        check=True,
    )
    n, secs = out.stdout.split()
    return int(n) / float(secs)


def bench_modbus(seconds: float, rounds: int) -> dict[str, Any]:
    """Requests/s against one simulated DSE genset, median of `rounds`."""
    host = SimHost({"modbus": [{"units": [[1, "dse-gencomm"]]}]})
    try:
        port = host.ports["modbus"][0]
        ours, raw, native = [], [], []
        plan: list[tuple[str, int, int]] = []
        for _ in range(rounds):
            rate, plan = asyncio.run(_roomguard_modbus(port, seconds))
            ours.append(rate)
            raw.append(asyncio.run(_raw_pymodbus(port, plan, seconds)))
            c = _libmodbus(port, plan, seconds)
            if c is not None:
                native.append(c)
        return {
            "requests_per_poll": len(plan),
            "roomguard": statistics.median(ours),
            "pymodbus": statistics.median(raw),
            "libmodbus": statistics.median(native) if native else None,
        }
    finally:
        host.close()


# ---------------------------------------------------------------- SNMP
HR_SW_RUN = "1.3.6.1.2.1.25.4.2.1"


def _bench_snmp_profile() -> Any:
    from devices.snmp_profile import SnmpProfile

    cols = {
        1: ("index", "integer"),
        2: ("name", "string"),
        3: ("id", "oid"),
        4: ("path", "string"),
        5: ("params", "string"),
        6: ("type", "integer"),
        7: ("status", "integer"),
    }
    return SnmpProfile.model_validate(
        {
            "model": "bench-hrswrun",
            "vendor": "net-snmp",
            "title": "hrSWRunTable",
            "device_class": "env",
            "protocol": "snmp",
            "tables": [
                {
                    "name": "run",
                    "columns": [
                        {"oid": f"{HR_SW_RUN}.{c}", "metric": f"run{{index}}_{n}", "type": t}
                        for c, (n, t) in cols.items()
                    ],
                }
            ],
        }
    )


async def _roomguard_snmp(port: int, seconds: float) -> float:
    from devices.snmp_reader import SnmpReader
    from devices.snmp_transport import SnmpTarget, SnmpV2c

    reader = SnmpReader(_bench_snmp_profile(), SnmpTarget("127.0.0.1", port, 2.0, 0, SnmpV2c("bench")))
    await reader.read()
    varbinds, end = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        varbinds += len(await reader.read())
    rate = varbinds / (time.perf_counter() - t0)
    await reader.close()
    return rate


async def _raw_pysnmp(port: int, seconds: float) -> float:
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        bulk_walk_cmd,
    )

    engine = SnmpEngine()
    target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=2, retries=0)
    auth = CommunityData("bench", mpModel=1)
    varbinds, end = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        async for err_ind, err_stat, _idx, vbs in bulk_walk_cmd(
            engine,
            auth,
            target,
            ContextData(),
            0,
            25,
            ObjectType(ObjectIdentity(HR_SW_RUN)),
            lexicographicMode=False,
            lookupMib=False,
        ):
            if err_ind or err_stat:
                raise RuntimeError(str(err_ind or err_stat))
            varbinds += len(vbs)
    rate = varbinds / (time.perf_counter() - t0)
    engine.close_dispatcher()
    return rate


def _netsnmp(port: int, seconds: float) -> float:
    env = {**os.environ, "MIBS": ""}
    varbinds, end = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        out = subprocess.run(
            ["snmpbulkwalk", "-v2c", "-c", "bench", "-Cr25", "-On", "-Oq", f"127.0.0.1:{port}", HR_SW_RUN],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        varbinds += out.stdout.count("\n")
    return varbinds / (time.perf_counter() - t0)


_SNMPD_TYPES = {
    "integer": "integer",
    "gauge": "unsigned",
    "timeticks": "timeticks",
    "string": "octet_str",
    "oid": "object_id",
}


class SnmpdHost:
    """A net-snmp `snmpd` on a free loopback port, serving the given configuration lines."""

    def __init__(self, conf_lines: list[str]) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self._dir = tempfile.TemporaryDirectory()
        conf = Path(self._dir.name) / "snmpd.conf"
        conf.write_text("\n".join(conf_lines) + "\n")
        snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
        pid = str(Path(self._dir.name) / "pid")
        self.proc = subprocess.Popen(
            [snmpd, "-f", "-Lf", "/dev/null", "-C", "-c", str(conf), "-p", pid, f"udp:127.0.0.1:{self.port}"]
        )
        time.sleep(0.5)

    @classmethod
    def for_profile(cls, model: str, communities: list[str]) -> SnmpdHost:
        """snmpd serving one profile's example values (via `override`), one community per device.

        The fleet benchmark measures the poller, so the SNMP devices must not be the bottleneck: a
        pysnmp-based agent costs ~4 ms CPU per poll, and 400 of them at a 5 s interval would need the
        whole machine. snmpd answers in native code, as a real device's agent does.
        """
        from devices.registry import ProfileRegistry
        from devices.snmp_codec import encode_profile

        profile = ProfileRegistry.builtin().get(model)
        lines = [f"rocommunity {c} 127.0.0.1" for c in communities]
        for oid, (kind, raw) in sorted(encode_profile(profile, {}).items()):  # type: ignore[arg-type]
            value = f'"{raw}"' if kind == "string" else str(raw)
            lines.append(f"override {oid} {_SNMPD_TYPES[kind]} {value}")
        return cls(lines)

    def close(self) -> None:
        """Stop snmpd."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._dir.cleanup()


def bench_snmp(seconds: float, rounds: int) -> dict[str, Any]:
    """Varbinds/s walking hrSWRunTable on a real snmpd, median of `rounds`."""
    agent = SnmpdHost(["rocommunity bench 127.0.0.1"])
    try:
        ours, raw, native = [], [], []
        for _ in range(rounds):
            ours.append(asyncio.run(_roomguard_snmp(agent.port, seconds)))
            raw.append(asyncio.run(_raw_pysnmp(agent.port, seconds)))
            native.append(_netsnmp(agent.port, seconds))
        return {
            "roomguard": statistics.median(ours),
            "pysnmp": statistics.median(raw),
            "net-snmp": statistics.median(native),
        }
    finally:
        agent.close()


# ---------------------------------------------------------------- scale
def _start_hosts(spec: dict[str, Any]) -> tuple[list[Any], dict[str, list[int]]]:
    """One simulator process per Modbus gateway and one snmpd per SNMP group, as separate devices
    would be: a single Python process serving the whole fleet would be the bottleneck."""
    hosts: list[Any] = []
    ports: dict[str, list[int]] = {"modbus": [], "snmp": []}
    for group in spec["modbus"]:
        host = SimHost({"modbus": [group]})
        hosts.append(host)
        ports["modbus"].extend(host.ports["modbus"])
    for group in spec["snmp"]:
        models = {m for _, m in group["devices"]}
        assert len(models) == 1, "one model per snmpd group"
        snmpd = SnmpdHost.for_profile(models.pop(), [c for c, _ in group["devices"]])
        hosts.append(snmpd)
        ports["snmp"].append(snmpd.port)
    return hosts, ports


def bench_scale(sizes: list[int], seconds: float, interval: float = 5.0) -> list[dict[str, Any]]:
    """CPU share of one core used by the poller for each fleet size; a size it cannot keep up with
    is reported as such, with what was measured, and the next size still runs."""
    rows = []
    for n in sizes:
        spec, layout = scale_spec(n)
        hosts, ports = _start_hosts(spec)
        try:
            devices = [[proto, ports[proto][g], key, model] for proto, g, key, model in layout]
            job = {"interval": interval, "seconds": seconds, "timeout": 3.0, "devices": devices}
            # The worker reports on wall-clock time whatever state its loop is in; only a start-up that
            # never ends (or a crash) leaves no figures.
            res, why = run_worker(job, limit_s=interval * 1.5 + seconds + 120)
        finally:
            for host in hosts:
                host.close()
        if res is None:
            print(f"  {n:>5} devices: could not keep up at {n}: {why}", flush=True)
            rows.append({"devices": n, "kept_up": False, "cpu_pct": float("nan"), "starved": n})
            continue
        res["cpu_pct"] = 100.0 * res["cpu_s"] / res["wall_s"]
        res["polls_per_s"] = res["polls"] / res["wall_s"]
        rows.append(res)
        failures = ", ".join(f"{k} x{v}" for k, v in res["failures"].items()) or "none"
        verdict = "kept up" if res["kept_up"] else f"could not keep up at {n}"
        print(
            f"  {n:>5} devices: {verdict}: poller CPU {res['cpu_pct']:5.1f} % of one core, "
            f"{res['polls_per_s']:7.1f} polls/s of {res['needed_per_s']:.0f} needed, good {res['good']}/"
            f"{res['polls']}, behind schedule {res['starved']}; failures: {failures}; loop lag p50/max "
            f"{res['lag_p50_s'] * 1000:.0f}/{res['lag_max_s'] * 1000:.0f} ms; admission limit "
            f"{res['gate_limit']}, queued {res['gate_queued']}, cuts {res['gate_cuts']}; "
            f"prepare {res['prepared_s']:.1f} s",
            flush=True,
        )
    return rows


def main() -> None:
    """Run all three benchmarks and print our figures next to the peers'."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per throughput measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", default="250,500,1000,1500", help="fleet sizes, comma separated")
    ap.add_argument("--scale-seconds", type=float, default=20.0)
    ap.add_argument("--skip", default="", help="comma list of modbus,snmp,scale to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if "modbus" not in skip:
        m = bench_modbus(args.seconds, args.rounds)
        print(f"Modbus TCP, DSE genset profile ({m['requests_per_poll']} requests per poll), requests/s:")
        print(f"  roomguard ModbusReader {m['roomguard']:9.0f}")
        print(
            f"  raw pymodbus loop      {m['pymodbus']:9.0f}   ratio roomguard/pymodbus = "
            f"{m['roomguard'] / m['pymodbus']:.2f} (target >= 0.8)"
        )
        if m["libmodbus"]:
            print(f"  libmodbus C loop       {m['libmodbus']:9.0f}   (native reference)")
    if "snmp" not in skip:
        s = bench_snmp(args.seconds, args.rounds)
        print("SNMP v2c GETBULK walk of hrSWRunTable on net-snmp snmpd, varbinds/s:")
        print(f"  roomguard SnmpReader   {s['roomguard']:9.0f}")
        print(
            f"  raw pysnmp bulk walk   {s['pysnmp']:9.0f}   ratio roomguard/pysnmp = "
            f"{s['roomguard'] / s['pysnmp']:.2f} (target >= 0.8)"
        )
        print(f"  net-snmp snmpbulkwalk  {s['net-snmp']:9.0f}   (native reference, incl. process start)")
    if "scale" not in skip:
        print(
            "Fleet at a 5 s interval (60 % Modbus on pymodbus simulators, 40 % SNMP on snmpd; "
            "devices in other processes):"
        )
        rows = bench_scale([int(x) for x in args.scale.split(",")], args.scale_seconds)
        ok = [r["devices"] for r in rows if r["kept_up"] and r["cpu_pct"] < 50]
        print(
            f"  largest fleet polled on schedule under 50 % of one core: {max(ok) if ok else 0} "
            "(target >= 1000)"
        )


if __name__ == "__main__":
    main()
