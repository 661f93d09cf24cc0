"""Golden SNMP decoding: each tests/golden/snmp/<profile>/<case>/ folder is one test case.

A case holds `device.snmprec` (or `recording.txt` naming a snmpsim-data file) and `expected.json`.
expected.json is written by hand from the recording and the MIB, never from the code's output:
a `_comment` names the sources (MIB objects, units, enums) and every metric is
{"value": ..., "quality": ..., "why": "..."}, where `why` quotes the recording line(s) it reads as
L<line> `<oid>|<tag>|<value>` (1-based line of the recording, decompressed for .bz2) or names an
object the walk lacks as absent `<oid>`, then gives the conversion and its arithmetic. The test
checks both the decoded metrics and that every quoted line is really there (and every absent OID
really missing). Adding a case = adding a folder with a hand-derived expected.json.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from devices.reading import Metric
from devices.snmp_codec import decode, encode_profile, encoded_values
from tests.snmp_fixtures import (
    GOLDEN,
    case_values,
    read_recording,
    snmp_profile,
    snmp_profiles,
    snmpsim_data_dir,
)

CASES = sorted(p for p in GOLDEN.glob("*/*") if p.is_dir())
CASE_IDS = [f"{c.parent.name}/{c.name}" for c in CASES]

QUOTED_LINE = re.compile(r"L(\d+) `([^`]+)`")
ABSENT_OID = re.compile(r"absent `([0-9.]+)`")


def load_expected(case: Path) -> dict[str, dict[str, object]]:
    """The case's expected.json without its `_comment` keys."""
    raw: dict[str, dict[str, object]] = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    return {name: spec for name, spec in raw.items() if not name.startswith("_")}


def recording_lines(case: Path) -> list[str]:
    """Lines of the case's recording, as the `why` texts number them (1-based, split on newlines)."""
    local = case / "device.snmprec"
    if local.exists():
        return local.read_text(encoding="utf-8").split("\n")
    ref = (case / "recording.txt").read_text().strip()
    return read_recording(snmpsim_data_dir() / ref).split("\n")


def same_value(expected: object, got: object) -> bool:
    """Equal values: floats to 1e-6, bools and strings exactly (True is not 1, 1 is not True)."""
    if expected is None or isinstance(expected, bool | str):
        return type(got) is type(expected) and got == expected
    if isinstance(got, bool) or not isinstance(got, int | float) or not isinstance(expected, int | float):
        return False
    return math.isclose(got, expected, rel_tol=0.0, abs_tol=1e-6)


def assert_matches_golden(metrics: list[Metric], case: Path) -> None:
    """The metrics equal the case's hand-derived expectations (names, qualities, values)."""
    got = {m.name: m for m in metrics}
    expected = load_expected(case)
    assert len(got) == len(metrics), "a metric was produced twice"
    assert sorted(got) == sorted(expected), "metric names differ"
    for name, exp in expected.items():
        m = got[name]
        assert m.quality.value == exp["quality"], f"{name}: quality {m.quality.value} != {exp['quality']}"
        assert same_value(exp["value"], m.value), (
            f"{name}: decoded {m.value!r}, hand-derived {exp['value']!r}"
        )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_golden_case(case: Path) -> None:
    assert_matches_golden(decode(snmp_profile(case.parent.name), case_values(case)), case)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_golden_expectations_cite_the_recording(case: Path) -> None:
    """Every expected metric says why, and the recording lines it quotes are the recording's."""
    lines = recording_lines(case)
    oids = {line.split("|", 1)[0] for line in lines if "|" in line and not line.startswith("#")}
    for name, exp in load_expected(case).items():
        assert set(exp) == {"value", "quality", "why"}, f"{name}: keys {sorted(exp)}"
        why = exp["why"]
        assert isinstance(why, str), f"{name}: why is not a string"
        assert why.strip(), f"{name}: no derivation given"
        for number, quoted in QUOTED_LINE.findall(why):
            n = int(number)
            assert 1 <= n <= len(lines), f"{name}: the recording has no line {n}"
            assert lines[n - 1] == quoted, f"{name}: line {n} is not `{quoted}`"
        for oid in ABSENT_OID.findall(why):
            present = [o for o in oids if o == oid or o.startswith(oid + ".")]
            assert not present, f"{name}: {oid} said absent but the recording has {present}"


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
            assert (
                got[p.name] == pytest.approx(p.example)
                if isinstance(p.example, float)
                else got[p.name] == p.example
            ), p.name
    for t in profile.tables:
        for name, example in t.examples.items():
            assert got[name] == pytest.approx(example), name
