"""Commissioning helper: read raw registers and show every plausible interpretation side by side."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import cast

from devices.errors import TransportError
from devices.modbus_profile import Table
from devices.modbus_transport import ModbusTcpTransport

# Byte order of the 4 bytes A B C D (A = high byte of the first register) under each convention.
ORDERS: dict[str, tuple[int, int, int, int]] = {
    "ABCD": (0, 1, 2, 3),  # big word, big byte (DSE, InRow, APC)
    "CDAB": (2, 3, 0, 1),  # little word order ("word swap"; mbpoll's default)
    "BADC": (1, 0, 3, 2),  # byte swap inside each register
    "DCBA": (3, 2, 1, 0),  # fully little-endian
}
# Typical machine-room ranges used only as hints (a value in one of them is worth a second look).
RANGES: tuple[tuple[str, float, float], ...] = (
    ("0-100 %", 0.0, 100.0),
    ("-40-80 °C", -40.0, 80.0),
    ("180-260 V", 180.0, 260.0),
    ("45-65 Hz", 45.0, 65.0),
)
_MIN_NORMAL = 1.1754943508222875e-38
TABLES = ("holding", "input", "coil", "discrete")


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What one probe read: the request and the raw registers/bits, or the error."""

    host: str
    port: int
    unit_id: int
    table: Table
    address: int
    count: int
    values: list[int] | list[bool] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PairDecode:
    """Two consecutive registers decoded under one byte/word order."""

    address: int
    order: str
    int32: int
    uint32: int
    float32: float
    float_verdict: str
    float_note: str

    @property
    def float_plausible(self) -> bool:
        """The float32 reading looks like a real value."""
        return self.float_verdict == "plausible"


async def probe_modbus(
    host: str, port: int, unit_id: int, table: str, address: int, count: int, timeout_s: float = 3.0
) -> ProbeReport:
    """Read `count` registers/bits once and return them (transport errors are reported, not raised)."""
    if table not in TABLES:
        raise ValueError(f"table: got {table!r}; valid choices: {', '.join(TABLES)}")
    t = cast(Table, table)
    transport = ModbusTcpTransport(host, port, timeout_s)
    try:
        values = await transport.read(t, address, count, unit_id)
        return ProbeReport(host, port, unit_id, t, address, count, values)
    except TransportError as exc:
        return ProbeReport(host, port, unit_id, t, address, count, error=f"{type(exc).__name__}: {exc}")
    finally:
        await transport.close()


def float_verdict(x: float) -> tuple[str, str]:
    """Classify a float32 reading: "implausible" (NaN/inf, denormal, tiny, huge), "plausible" (sane and
    in a typical range or a short decimal such as 230.5), else "possible". Word-swapped data usually
    decodes to denormals or absurd magnitudes, which is what makes the right order stand out."""
    if math.isnan(x):
        return "implausible", "NaN"
    if math.isinf(x):
        return "implausible", "infinite"
    if x == 0.0:
        return "plausible", "zero"
    if abs(x) < _MIN_NORMAL:
        return "implausible", "denormal"
    if abs(x) < 1e-6:
        return "implausible", "tiny"
    if abs(x) > 1e7:
        # float32 holds ~7 significant digits; meters and counters beyond that use integer registers.
        return "implausible", "huge"
    hints = range_hints(x)
    if hints:
        return "plausible", ", ".join(hints)
    if _short_decimal(x):
        return "plausible", "short decimal"
    return "possible", "no typical range"


def float_plausibility(x: float) -> tuple[bool, str]:
    """(True, note) when `float_verdict` says plausible."""
    verdict, note = float_verdict(x)
    return verdict == "plausible", note


def _short_decimal(x: float) -> bool:
    """True when x is the float32 nearest to a decimal of ≤5 significant digits (e.g. 1544.0, 0.125)."""
    return struct.pack(">f", float(f"{x:.5g}")) == struct.pack(">f", x)


def range_hints(x: float) -> list[str]:
    """Typical ranges this value falls in."""
    return [label for label, lo, hi in RANGES if lo <= x <= hi]


def decode_pairs(registers: list[int], address: int = 0) -> list[PairDecode]:
    """Every consecutive register pair under ABCD/CDAB/BADC/DCBA as int32/uint32/float32."""
    out: list[PairDecode] = []
    for i in range(len(registers) - 1):
        raw = struct.pack(">HH", registers[i] & 0xFFFF, registers[i + 1] & 0xFFFF)
        for name, idx in ORDERS.items():
            b = bytes(raw[j] for j in idx)
            u = int.from_bytes(b, "big")
            f = struct.unpack(">f", b)[0]
            verdict, note = float_verdict(f)
            out.append(
                PairDecode(address + i, name, u - (1 << 32) if u >= 1 << 31 else u, u, f, verdict, note)
            )
    return out


def _int_hints(v: int) -> str:
    hints = [f"{label}" for label in range_hints(v)]
    hints += [f"x0.1 → {v / 10:g} ({label})" for label in range_hints(v / 10)] if v else []
    return "; ".join(hints)


def format_probe(report: ProbeReport) -> str:
    """Human-readable dump: raw hex, int16/uint16 per register, and every pair under the 4 orders."""
    head = (
        f"{report.host}:{report.port} unit {report.unit_id} {report.table} "
        f"wire {report.address}..{report.address + report.count - 1} ({report.count})"
    )
    if report.error is not None:
        return f"{head}\nERROR {report.error}\n"
    lines = [head]
    if report.table in ("coil", "discrete"):
        lines += [f"  {report.address + i:5d}  {int(bool(v))}" for i, v in enumerate(report.values)]
        return "\n".join(lines) + "\n"
    regs = [int(v) for v in report.values]
    lines.append("  addr   hex     uint16   int16   hints")
    for i, r in enumerate(regs):
        s16 = r - 0x10000 if r >= 0x8000 else r
        hints = _int_hints(s16)
        lines.append(f"  {report.address + i:5d}  0x{r:04X}  {r:6d}  {s16:6d}   {hints}".rstrip())
    if len(regs) > 1:
        lines.append("  pair         order  int32         uint32      float32         verdict")
        for p in decode_pairs(regs, report.address):
            verdict = f"{p.float_verdict} ({p.float_note})"
            lines.append(
                f"  {p.address:5d}-{p.address + 1:<5d}  {p.order}   {p.int32:<12d}  {p.uint32:<10d}  "
                f"{p.float32:<14.7g}  {verdict}"
            )
    return "\n".join(lines) + "\n"
