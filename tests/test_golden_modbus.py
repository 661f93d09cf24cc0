"""Golden cases: tests/golden/modbus/<model>/<case>/{registers.json, expected.json}.

registers.json maps table → {address: value | [values from address on]} (wire addresses; values may be
hex strings such as "0x7FFF"); addresses it does not list answer exception 2 like a real device.
settings.json holds the site file's `settings:` of the unit, required when the profile has settings.
expected.json maps every metric → {"value": ..., "quality": ..., "why": ...} ("why": the register, the
source and the arithmetic, for a reader; not checked); keys starting with "_" are comments. Adding a case =
adding a folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modbus_support import MemorySource, profile

from devices.modbus_reader import ModbusReader

GOLDEN = Path(__file__).parent / "golden" / "modbus"
CASES = sorted(p.parent for p in GOLDEN.glob("*/*/registers.json"))


def load_tables(path: Path) -> dict[str, dict[int, int | bool]]:
    """registers.json → {table: {address: value}}."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    tables: dict[str, dict[int, int | bool]] = {}
    for table, cells in raw.items():
        if table.startswith("_"):
            continue  # "_comment" keys
        out = tables.setdefault(table, {})
        for start, value in cells.items():
            values = value if isinstance(value, list) else [value]
            for i, v in enumerate(values):
                out[int(start, 0) + i] = int(v, 0) if isinstance(v, str) else v
    return tables


def test_every_modbus_profile_has_a_golden_case():
    from modbus_support import MODBUS_MODELS

    assert MODBUS_MODELS, "no Modbus profiles found"
    assert sorted({c.parent.name for c in CASES}) == MODBUS_MODELS


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
async def test_golden(case: Path):
    prof = profile(case.parent.name)
    chosen = case / "settings.json"
    if prof.settings or chosen.exists():
        # A profile with settings has no safe default: a case must state the unit's, as a site file does.
        prof = prof.configured(json.loads(chosen.read_text(encoding="utf-8")))
    source = MemorySource(load_tables(case / "registers.json"))
    metrics = await ModbusReader(prof, source, 1).read()
    got = {m.name: {"value": m.value, "quality": str(m.quality)} for m in metrics}
    raw = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    expected = {k: v for k, v in raw.items() if not k.startswith("_")}
    assert sorted(got) == sorted(expected), "metric names differ"
    for name, exp in expected.items():
        g = got[name]
        assert g["quality"] == exp["quality"], name
        if isinstance(exp["value"], float):
            assert g["value"] == pytest.approx(exp["value"], abs=1e-6), name
        else:
            assert g["value"] == exp["value"], name
    assert len(metrics) == len(got), "a metric was produced twice"
