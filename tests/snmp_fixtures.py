"""Shared SNMP test helpers: snmprec parsing, profile loading, snmpsim and SnmpSimAgent fixtures."""

from __future__ import annotations

import bz2
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from devices.reading import Value
from devices.registry import load_profile
from devices.snmp_codec import NO_SUCH, Oid, SnmpValue
from devices.snmp_profile import SnmpProfile
from testkit.ports import reserve_port

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "devices" / "profiles"
GOLDEN = ROOT / "tests" / "golden" / "snmp"
VENV_BIN = Path(sys.executable).parent


def snmpsim_data_dir() -> Path:
    """Folder of the snmpsim-data recordings (PyPI package snmpsim-data)."""
    import snmpsim_data

    return Path(snmpsim_data.__file__).parent / "data"


# The real recordings served live; community = file stem once bunzipped into the data dir.
RECORDINGS = {
    "eaton-93e": "UPS/eaton-93e-80.snmprec.bz2",
    "liebert-pex": "UPS/vertiv-power.snmprec.bz2",
    "geist-wd15": "iot/geist-temperature-sensor.snmprec",
}


def snmp_profile(model: str) -> SnmpProfile:
    """Load a shipped SNMP profile through the registry (validates model == file stem)."""
    prof = load_profile(PROFILES / f"{model}.yaml")
    assert isinstance(prof, SnmpProfile)
    return prof


def snmp_profiles() -> list[str]:
    """Every shipped profile with protocol: snmp."""
    return sorted(p.stem for p in PROFILES.glob("*.yaml") if "protocol: snmp" in p.read_text())


def read_recording(path: Path) -> str:
    """Text of a .snmprec or .snmprec.bz2 file."""
    data = path.read_bytes()
    return (bz2.decompress(data) if path.suffix == ".bz2" else data).decode("utf-8")


def parse_snmprec(text: str) -> dict[str, SnmpValue]:
    """snmprec lines `oid|tag[:variation]|value` → what our transport would return (variations: initial)."""
    out: dict[str, SnmpValue] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        oid, tag, value = line.split("|", 2)
        base, _, variation = tag.partition(":")
        if variation:  # numeric/writecache: the value part is settings; use the starting value
            settings = dict(kv.split("=", 1) for kv in value.split(",") if "=" in kv)
            value = settings.get("initial", settings.get("value", settings.get("min", "0")))
        hexed = base.endswith("x")
        code = base.rstrip("x")
        raw = bytes.fromhex(value) if hexed else value.encode()
        if code in ("2", "65", "66", "67", "70"):
            out[oid] = int(float(raw.decode()))
        elif code == "6":
            out[oid] = Oid(raw.decode())
        elif code == "64":
            out[oid] = ".".join(str(b) for b in raw) if hexed else raw.decode()
        elif code in ("4", "68"):
            try:
                text_value = raw.decode("utf-8")
                out[oid] = text_value if text_value.isprintable() else raw
            except UnicodeDecodeError:
                out[oid] = raw
        else:  # 5 null, 128-130 noSuch*/endOfMib
            out[oid] = NO_SUCH
    return out


def case_values(case_dir: Path) -> dict[str, SnmpValue]:
    """Values of a golden case: its device.snmprec, or the snmpsim-data file named in recording.txt."""
    local = case_dir / "device.snmprec"
    if local.exists():
        return parse_snmprec(local.read_text())
    ref = (case_dir / "recording.txt").read_text().strip()
    return parse_snmprec(read_recording(snmpsim_data_dir() / ref))


def free_udp_port() -> int:
    """A UDP port free right now on 127.0.0.1 (testkit/ports.py)."""
    return reserve_port()


def require_tool(path: str) -> str:
    """Absolute path of a tool; fails (never skips) when it is missing."""
    found = shutil.which(path) or (path if Path(path).exists() else None)
    if not found:
        pytest.fail(f"{path} not installed: apt-get install -y snmp snmpd snmptrapd nut-snmp", pytrace=False)
    return found


def wait_udp_agent(port: int, community: str, timeout: float = 20.0) -> None:
    """Block until an agent answers sysUpTime on 127.0.0.1:port (uses net-snmp snmpget)."""
    snmpget = require_tool("snmpget")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(
            [
                snmpget,
                "-v2c",
                "-c",
                community,
                "-t",
                "0.5",
                "-r",
                "0",
                "-On",
                f"127.0.0.1:{port}",
                "1.3.6.1.2.1.1.3.0",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "MIBS": ""},
            check=False,
        )
        if r.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"agent on udp/{port} did not come up")


@pytest.fixture(scope="session")
def snmpsim_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """snmpsim-command-responder serving the real recordings (community = eaton-93e, liebert-pex, …)."""
    data = tmp_path_factory.mktemp("snmpsim-data")
    cache = tmp_path_factory.mktemp("snmpsim-cache")
    for community, ref in RECORDINGS.items():
        (data / f"{community}.snmprec").write_text(read_recording(snmpsim_data_dir() / ref))
    port = free_udp_port()
    exe = VENV_BIN / "snmpsim-command-responder"
    if not exe.exists():
        pytest.fail("snmpsim-command-responder missing from the venv (pip install snmpsim==1.2.2)")
    log = (cache / "snmpsim.log").open("w")
    proc = subprocess.Popen(
        [
            str(exe),
            f"--data-dir={data}",
            f"--cache-dir={cache}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}",
            "--log-level=error",
        ],
        env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_udp_agent(port, "eaton-93e", timeout=60)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


# --- net-snmp snmpd as a test peer ------------------------------------------------------------------

SNMPD_TYPES = {
    "integer": "integer",
    "gauge": "unsigned",
    "timeticks": "timeticks",
    "string": "octet_str",
    "oid": "object_id",
}
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


def profile_overrides(model: str, values: Mapping[str, Value] | None = None) -> list[str]:
    """snmpd.conf `override` lines serving a profile's example values (and `values`) at its OIDs."""
    from devices.snmp_codec import encode_profile

    lines = []
    for oid, (kind, raw) in sorted(encode_profile(snmp_profile(model), values or {}).items()):
        lines.append(f"override {oid} {SNMPD_TYPES[kind]} " + (f'"{raw}"' if kind == "string" else str(raw)))
    return lines


def v3_args(user: str, auth_key: str, priv_key: str) -> list[str]:
    """net-snmp command-line credentials of an authPriv SHA-256/AES-128 user."""
    return ["-v3", "-l", "authPriv", "-u", user, "-a", "SHA-256", "-A", auth_key, "-x", "AES", "-X", priv_key]


class Snmpd:
    """A net-snmp snmpd on a free loopback UDP port from `conf` lines, ready once `snmpget ready…` answers.

    Each instance has its own persistent directory, so its own snmpEngineID (RFC 3411: unique per agent).
    """

    def __init__(self, directory: Path, conf: list[str], ready: list[str], timeout_s: float = 20.0) -> None:
        self.port = free_udp_port()
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        lines = [f"agentAddress udp:127.0.0.1:{self.port}", *conf]
        (directory / "snmpd.conf").write_text("\n".join(lines) + "\n")
        self.log = directory / "snmpd.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    require_tool("snmpd"),
                    "-f",
                    "-Lo",
                    "-C",
                    "-c",
                    str(directory / "snmpd.conf"),
                    "-p",
                    str(directory / "pid"),
                    "-M",
                    "/dev/null",
                    "-m",
                    "",
                ],
                env={**os.environ, "SNMP_PERSISTENT_DIR": str(directory / "persist")},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while subprocess.run(
            [
                require_tool("snmpget"),
                *ready,
                "-t",
                "0.5",
                "-r",
                "0",
                "-On",
                f"127.0.0.1:{self.port}",
                SYS_UPTIME,
            ],
            capture_output=True,
            env={**os.environ, "MIBS": ""},
            check=False,
        ).returncode:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                pytest.fail(f"snmpd on udp/{self.port} did not start: {self.log.read_text()}")
            time.sleep(0.2)

    def close(self) -> None:
        """Stop snmpd."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
