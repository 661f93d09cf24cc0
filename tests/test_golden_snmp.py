"""Golden SNMP decoding: each tests/golden/snmp/<profile>/<case>/ folder is one test case.

A case holds `device.snmprec` (or `recording.txt` naming a snmpsim-data file) and `expected.json`
(metric → {value, quality}). Adding a case = adding a folder. To (re)write expected.json after a
deliberate change, run with SNMP_GOLDEN_UPDATE=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devices.reading import Metric
from devices.snmp_codec import decode, encode_profile, encoded_values
from tests.snmp_fixtures import GOLDEN, case_values, snmp_profile, snmp_profiles

CASES = sorted(p for p in GOLDEN.glob("*/*") if p.is_dir())


def as_json(metrics: list[Metric]) -> dict[str, dict[str, object]]:
    """Metrics in the expected.json shape."""
    return {m.name: {"value": m.value, "quality": m.quality.value} for m in metrics}


def load_expected(case: Path) -> dict[str, dict[str, object]]:
    """The case's expected.json."""
    expected: dict[str, dict[str, object]] = json.loads((case / "expected.json").read_text())
    return expected


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_golden_case(case: Path) -> None:
    profile = snmp_profile(case.parent.name)
    got = as_json(decode(profile, case_values(case)))
    if os.environ.get("SNMP_GOLDEN_UPDATE"):
        (case / "expected.json").write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert got == load_expected(case)


def test_every_snmp_profile_has_a_golden_case() -> None:
    with_cases = {c.parent.name for c in CASES}
    assert set(snmp_profiles()) <= with_cases, set(snmp_profiles()) - with_cases


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("model", snmp_profiles())
def test_examples_round_trip_through_the_codec(model: str) -> None:
    """encode_profile(examples) decoded again gives back every example value."""
    profile = snmp_profile(model)
    got = {m.name: m.value for m in decode(profile, encoded_values(encode_profile(profile, {})))}
    for p in profile.scalars:
        if p.example is not None:
            assert got[p.name] == pytest.approx(p.example) if isinstance(p.example, float) else \
                got[p.name] == p.example, p.name
    for t in profile.tables:
        for name, example in t.examples.items():
            assert got[name] == pytest.approx(example), name
