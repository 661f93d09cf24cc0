"""Merge Modbus points into the fewest block reads, and slice the responses back (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

# Protocol limits (Modbus Application Protocol V1.1b3 §6.1-6.4): FC3/FC4 ≤125 registers, FC1/FC2 ≤2000 bits.
MAX_REGISTERS = 125
MAX_BITS = 2000
BIT_TABLES = frozenset({"coil", "discrete"})
_TABLE_ORDER = {"coil": 0, "discrete": 1, "holding": 2, "input": 3}


class Span(Protocol):
    """Anything with a wire table, start address and width (registers, or bits for coil/discrete)."""

    @property
    def table(self) -> str:
        """coil, discrete, holding or input."""
        ...

    @property
    def address(self) -> int:
        """Wire (0-based) address of the first register or bit."""
        ...

    @property
    def width(self) -> int:
        """Registers or bits covered."""
        ...


P = TypeVar("P", bound=Span)


@dataclass(frozen=True, slots=True)
class ReadRequest(Generic[P]):
    """One Modbus read: `count` registers/bits of `table` from `address`, covering `points`."""

    table: str
    address: int
    count: int
    points: tuple[P, ...]

    @property
    def end(self) -> int:
        """One past the last register/bit read."""
        return self.address + self.count


def plan_reads(
    points: Iterable[P],
    max_registers: int = MAX_REGISTERS,
    max_gap: int = 10,
    block_reads: bool = True,
    *,
    max_bits: int = MAX_BITS,
) -> list[ReadRequest[P]]:
    """Group points into reads: per table, sorted by address, greedily merged while the read stays
    within the size limit and no unread gap exceeds `max_gap`. ``block_reads=False`` → one read per point.

    Greedy left-to-right is minimal for points sorted by start: each read extends as far as the
    limits allow, so no other grouping can finish the same prefix of points in fewer reads.
    """
    if max_registers < 1 or max_bits < 1 or max_gap < 0:
        raise ValueError("max_registers and max_bits must be ≥1, max_gap ≥0")
    ordered = sorted(points, key=lambda p: (_TABLE_ORDER.get(p.table, 9), p.table, p.address, p.width))
    reads: list[ReadRequest[P]] = []
    group: list[P] = []
    start = end = 0
    table = ""
    for p in ordered:
        limit = max_bits if p.table in BIT_TABLES else max_registers
        if p.width < 1 or p.width > limit:
            raise ValueError(f"point at {p.table} {p.address}: width {p.width} outside 1..{limit}")
        p_end = p.address + p.width
        if (
            group
            and block_reads
            and p.table == table
            and p.address - end <= max_gap
            and max(end, p_end) - start <= limit
        ):
            group.append(p)
            end = max(end, p_end)
            continue
        if group:
            reads.append(ReadRequest(table, start, end - start, tuple(group)))
        group, table, start, end = [p], p.table, p.address, p_end
    if group:
        reads.append(ReadRequest(table, start, end - start, tuple(group)))
    return reads


def slice_response(
    request: ReadRequest[P], data: Sequence[int] | Sequence[bool]
) -> list[tuple[P, list[int] | list[bool]]]:
    """Cut one read's response into each point's own registers/bits, in the request's point order."""
    if len(data) < request.count:
        raise ValueError(f"response has {len(data)} values, read asked for {request.count}")
    out: list[tuple[P, list[int] | list[bool]]] = []
    for p in request.points:
        o = p.address - request.address
        out.append((p, list(data[o : o + p.width])))
    return out
