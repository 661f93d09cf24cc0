"""probe_modbus: pure formatting of the 4 byte/word orders, plus one real probe against the simulator."""

from __future__ import annotations

import struct

import pytest
from modbus_support import profile

from devices.probe_modbus import ProbeReport, decode_pairs, float_plausibility, format_probe, probe_modbus
from devices.sim.modbus_server import ModbusSimServer


def cdab(value: float) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [lo, hi]


@pytest.mark.parametrize("value", [230.5, 21.75, 49.98, -12.3, 99.9, 229.8, 13.6, 400.25, 1234.5, 230.4712])
def test_cdab_float_is_plausible_only_under_cdab(value):
    pairs = decode_pairs(cdab(value), 100)
    verdict = {p.order: p.float_plausible for p in pairs}
    assert verdict == {"ABCD": False, "CDAB": True, "BADC": False, "DCBA": False}
    assert next(p for p in pairs if p.order == "CDAB").float32 == pytest.approx(value, rel=1e-7)


def test_ambiguous_pair_keeps_range_hint_on_the_right_order():
    """-12.25 word-swapped reads 1544.0 under DCBA: both are sane floats; only the range hint tells."""
    by_order = {p.order: p for p in decode_pairs(cdab(-12.25))}
    assert by_order["CDAB"].float_plausible
    assert "-40-80 °C" in by_order["CDAB"].float_note
    assert by_order["DCBA"].float32 == 1544.0
    assert by_order["DCBA"].float_note == "short decimal"


def test_format_shows_hex_orders_and_verdicts():
    report = ProbeReport("127.0.0.1", 502, 1, "holding", 1032, 3, [0x8000, 0x4366, 2301])
    text = format_probe(report)
    assert "0x8000" in text
    assert "0x4366" in text
    assert "0x08FD" in text
    lines = text.splitlines()
    cdab_line = next(ln for ln in lines if ln.strip().startswith("1032-1033") and "CDAB" in ln)
    assert "230.5" in cdab_line
    assert "plausible (180-260 V)" in cdab_line
    for order in ("ABCD", "BADC", "DCBA"):
        line = next(ln for ln in lines if ln.strip().startswith("1032-1033") and order in ln)
        assert "implausible" in line
    reg = next(ln for ln in lines if ln.strip().startswith("1034"))
    assert "x0.1 → 230.1 (180-260 V)" in reg
    pair_lines = [ln for ln in lines if "-10" in ln and ("ABCD" in ln or "DCBA" in ln)]
    assert len(pair_lines) == 4  # 2 pairs x 2 orders


def test_int16_and_signed_view():
    text = format_probe(ProbeReport("h", 502, 2, "input", 1, 1, [0xFF33]))
    assert "0xFF33   65331    -205" in text
    assert "x0.1 → -20.5 (-40-80 °C)" in text


@pytest.mark.parametrize(
    ("value", "ok", "note"),
    [(float("nan"), False, "NaN"), (float("inf"), False, "infinite"), (1e-40, False, "denormal"),
     (3e-9, False, "tiny"), (5e12, False, "huge"), (0.0, True, "zero"), (50.0, True, "0-100 %"),
     (49797.918, False, "no typical range"), (1544.0, True, "short decimal")],
)  # fmt: skip
def test_float_plausibility(value, ok, note):
    got_ok, got_note = float_plausibility(value)
    assert got_ok is ok
    assert note in got_note


def test_error_report_is_formatted():
    text = format_probe(ProbeReport("h", 502, 1, "holding", 0, 2, error="DeviceTimeout: no answer"))
    assert "ERROR DeviceTimeout" in text


async def test_probe_against_simulator():
    server = ModbusSimServer("127.0.0.1", 0)
    server.add_device(5, profile("dse-gencomm"))
    await server.start()
    try:
        report = await probe_modbus("127.0.0.1", server.port, 5, "holding", 1032, 2, timeout_s=1.0)
        assert report.error is None
        assert report.values == [0, 2301]
        assert "0x08FD" in format_probe(report)
        bad = await probe_modbus("127.0.0.1", server.port, 5, "holding", 9000, 2, timeout_s=1.0)
        assert bad.error is not None
        assert "NoSuchObject" in bad.error
    finally:
        await server.stop()
