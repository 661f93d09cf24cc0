"""A large SNMP fleet starts cleanly: the first poll of 400 devices at once, none timing out."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.poller import Poller, PollTarget
from devices.reading import DeviceRef, PollResult, Quality
from devices.registry import ProfileRegistry
from devices.snmp_codec import encode_profile
from devices.snmp_profile import SnmpProfile
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import SnmpTarget, SnmpV2c

FLEET = 400
SNMPD_TYPES = {
    "integer": "integer",
    "gauge": "unsigned",
    "timeticks": "timeticks",
    "string": "octet_str",
    "oid": "object_id",
}


@pytest.fixture
def snmpd_ups(tmp_path: Path) -> Iterator[int]:
    """net-snmp snmpd serving the rfc1628-ups examples, one read community per device."""
    snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
    profile = ProfileRegistry.builtin().get("rfc1628-ups")
    assert isinstance(profile, SnmpProfile)
    lines = [f"rocommunity dev{i} 127.0.0.1" for i in range(FLEET)]
    for oid, (kind, raw) in sorted(encode_profile(profile, {}).items()):
        lines.append(f"override {oid} {SNMPD_TYPES[kind]} " + (f'"{raw}"' if kind == "string" else str(raw)))
    (tmp_path / "snmpd.conf").write_text("\n".join(lines) + "\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            snmpd,
            "-f",
            "-Lf",
            "/dev/null",
            "-C",
            "-c",
            str(tmp_path / "snmpd.conf"),
            "-p",
            str(tmp_path / "pid"),
            f"udp:127.0.0.1:{port}",
        ]
    )
    time.sleep(0.5)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.integration
async def test_first_round_of_a_large_fleet_does_not_time_out(snmpd_ups: int) -> None:
    """400 devices with distinct communities, phases spread over one 5 s interval, as `run` starts them.

    Registering each community lazily at its first poll makes pysnmp rebuild its maps on every message
    for the whole first round; the event loop stalls and first polls time out (Poller.prepare)."""
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
        first.setdefault(result.ref.device, result)
        if len(first) == FLEET:
            everyone_polled.set()

    task = asyncio.create_task(Poller(targets, sink, jitter_pct=100, seed=3).run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everyone_polled.wait(), timeout=30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(first) == FLEET
    bad = [f"{r.ref.device}: {r.error}" for r in first.values() if r.quality is not Quality.GOOD]
    assert not bad, f"{len(bad)} of {FLEET} first polls failed, e.g. {bad[:3]}"
    assert all({m.name: m.value for m in r.metrics}["output_source"] == "normal" for r in first.values())
