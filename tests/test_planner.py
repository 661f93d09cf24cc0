"""Planner: fewest block reads within size/gap limits; every point covered exactly once."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modbus_support import profile

from devices.planner import plan_reads, slice_response


@dataclass(frozen=True)
class P:
    table: str
    address: int
    width: int


points_st = st.lists(
    st.builds(
        P, st.sampled_from(["holding", "input", "coil", "discrete"]), st.integers(0, 600), st.integers(1, 8)
    ),
    max_size=40,
)


def uncovered_runs(read) -> list[int]:
    """Lengths of register runs inside a read that no point of the read covers."""
    covered: set[int] = set()
    for p in read.points:
        covered.update(range(p.address, p.address + p.width))
    runs, run = [], 0
    for a in range(read.address, read.end):
        if a in covered:
            if run:
                runs.append(run)
            run = 0
        else:
            run += 1
    return runs + ([run] if run else [])


@settings(max_examples=300, deadline=None)
@given(points=points_st, max_regs=st.integers(8, 125), max_gap=st.integers(0, 20), block=st.booleans())
def test_plan_properties(points, max_regs, max_gap, block):
    reads = plan_reads(points, max_regs, max_gap, block, max_bits=max(max_regs, 16))
    # every point is in exactly one read, and that read covers it entirely, in its own table
    seen = [id(p) for r in reads for p in r.points]
    assert sorted(seen) == sorted(id(p) for p in points)
    for r in reads:
        limit = max(max_regs, 16) if r.table in ("coil", "discrete") else max_regs
        assert 1 <= r.count <= limit
        for p in r.points:
            assert p.table == r.table
            assert r.address <= p.address
            assert p.address + p.width <= r.end
        # the read starts and ends on a point and never spans a gap larger than max_gap
        assert min(p.address for p in r.points) == r.address
        assert max(p.address + p.width for p in r.points) == r.end
        assert all(run <= max_gap for run in uncovered_runs(r))
    if not block:
        assert len(reads) == len(points)
        assert all(len(r.points) == 1 for r in reads)


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(0, 1000),
    widths=st.lists(st.integers(1, 4), min_size=1, max_size=80),
    max_regs=st.integers(4, 125),
)
def test_contiguous_points_use_minimal_reads(start, widths, max_regs):
    points, a = [], start
    for w in widths:
        points.append(P("holding", a, w))
        a += w
    reads = plan_reads(points, max_regs, 0, True)
    # lower bound: total registers / max per read; greedy packing of whole points can lose at most
    # (width - 1) per read, so with width ≤ 4 the count is ceil(total / (max_regs - 3)) at worst
    total = a - start
    assert len(reads) >= -(-total // max_regs)
    assert len(reads) <= -(-total // (max_regs - 3))
    if all(w == 1 for w in widths):
        assert len(reads) == -(-total // max_regs)


def test_gap_limit_splits_and_merges():
    pts = [P("holding", 0, 2), P("holding", 12, 1), P("holding", 24, 1)]
    assert [(r.address, r.count) for r in plan_reads(pts, 125, 10)] == [(0, 13), (24, 1)]
    assert [(r.address, r.count) for r in plan_reads(pts, 125, 11)] == [(0, 25)]
    assert [(r.address, r.count) for r in plan_reads(pts, 125, 9)] == [(0, 2), (12, 1), (24, 1)]


def test_tables_never_merge_and_bits_allow_2000():
    pts = [P("coil", i, 1) for i in range(0, 1999)] + [P("holding", 0, 1), P("input", 0, 1)]
    reads = plan_reads(pts, 125, 10)
    assert [(r.table, r.count) for r in reads] == [("coil", 1999), ("holding", 1), ("input", 1)]


def test_overlapping_points_share_a_read():
    pts = [P("holding", 0, 2), P("holding", 1, 1)]
    [r] = plan_reads(pts, 125, 0)
    assert (r.address, r.count) == (0, 2)


def test_too_wide_point_is_an_error():
    with pytest.raises(ValueError, match="width"):
        plan_reads([P("holding", 0, 126)], 125, 10)


def test_slice_response():
    pts = [P("holding", 10, 2), P("holding", 13, 1)]
    [r] = plan_reads(pts, 125, 10)
    assert slice_response(r, [1, 2, 3, 4]) == [(pts[0], [1, 2]), (pts[1], [4])]
    with pytest.raises(ValueError, match="asked for 4"):
        slice_response(r, [1, 2])


def test_dse_profile_plan():
    from devices.modbus_reader import ModbusReader

    reader = ModbusReader(profile("dse-gencomm"), None, 1)  # type: ignore[arg-type]
    assert reader.plan() == [
        ("holding", 772, 1),
        ("holding", 1024, 34),
        ("holding", 1408, 1),
        ("holding", 1536, 2),
        ("holding", 1558, 1),
        ("holding", 1798, 12),
        ("holding", 2048, 26),
    ]
