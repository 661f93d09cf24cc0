"""The benchmarks run: each, very briefly, produces its figures (no figure is judged: machines differ)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from testkit.example_site import ROOT

pytestmark = pytest.mark.integration


def test_bench_api_prints_our_figures_next_to_the_bare_fastapi_peer() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.api", "--seconds", "0.5", "--connections", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    figures = re.findall(
        r"^  (roomguard|bare FastAPI peer) +([\d,]+) req/s +p50 +[\d.]+ ms +p99", out.stdout, re.M
    )
    assert len(figures) >= 4, out.stdout  # two paths at least (the JSON one and the status page), both apps
    assert {name for name, _ in figures} == {"roomguard", "bare FastAPI peer"}
    assert "GET /\n" in out.stdout
    assert (
        len(re.findall(r"ratio [\d.]+x \(target ≥ 0\.5x: (?:met|NOT met)\)", out.stdout)) == len(figures) // 2
    )
    assert "NOT 200" not in out.stdout, out.stdout  # every call answered (the token works, the paths exist)
