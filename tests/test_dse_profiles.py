"""The DSE GenComm profiles: named-alarm families share dse-gencomm's status and instrument pages (3-7)."""

from __future__ import annotations

import pytest
from modbus_support import profile

from devices.modbus_profile import ModbusPoint

# Families with GenComm page 154 "Named Alarm Conditions" → their registers (Victron dse.py alarm_count).
NAMED_ALARM_FAMILIES = {
    "dse-gencomm-73xx-mkii": 20,
    "dse-gencomm-61xx-mkii": 15,
    "dse-gencomm-8xxx": 39,
    "dse-gencomm-45xx-mkii": 11,
}
PAGE_154 = 154 * 256


def instruments(model: str) -> list[ModbusPoint]:
    """Every point outside the alarm blocks (pages 3-7)."""
    return [p for p in profile(model).points if p.type != "nibbles" and p.name != "alarm_count"]


@pytest.mark.parametrize("model", sorted(NAMED_ALARM_FAMILIES))
def test_instrument_pages_are_dse_gencomms(model: str) -> None:
    assert instruments(model) == instruments("dse-gencomm")


@pytest.mark.parametrize("model", sorted(NAMED_ALARM_FAMILIES))
def test_named_alarms_fill_page_154_from_register_39425(model: str) -> None:
    [alarms] = [p for p in profile(model).points if p.type == "nibbles"]
    want = ("holding", PAGE_154 + 1, NAMED_ALARM_FAMILIES[model])
    assert (alarms.table, alarms.address, alarms.width) == want
    assert len(alarms.nibble_names or []) == 4 * alarms.width
