"""Derived Modbus metrics: a mode reported as one coil per mode (SmartGen HGM6100N coils 40-43) becomes
the catalog's one control_mode, and only a unit showing exactly one mode gives a reading."""

from __future__ import annotations

import pytest
from modbus_support import profile

from devices.modbus_profile import ModbusDerived, ModbusProfile
from devices.reading import Metric, Quality

MODE = ModbusDerived(
    name="control_mode", one_of={"mode_auto": "auto", "mode_manual": "manual", "mode_stop": "stop"}
)


def _coils(auto: bool | None, manual: bool | None, stop: bool | None) -> dict[str, Metric]:
    out = {}
    for name, v in (("mode_auto", auto), ("mode_manual", manual), ("mode_stop", stop)):
        out[name] = Metric(name, v) if v is not None else Metric(name, None, Quality.UNAVAILABLE)
    return out


@pytest.mark.parametrize(
    ("coils", "expected"),
    [
        ((True, False, False), ("auto", Quality.GOOD)),
        ((False, False, True), ("stop", Quality.GOOD)),
        ((False, False, False), (None, Quality.UNAVAILABLE)),  # no mode shown: nothing a rule can trust
        ((True, True, False), (None, Quality.UNAVAILABLE)),  # two modes at once
        ((True, None, False), (None, Quality.UNAVAILABLE)),  # a coil could not be read
    ],
)
def test_one_of_gives_the_only_true_state(
    coils: tuple[bool | None, ...], expected: tuple[object, Quality]
) -> None:
    got = MODE.compute(_coils(*coils))
    assert (got.name, got.value, got.quality) == ("control_mode", *expected)


def test_one_of_missing_source_metric_is_no_reading() -> None:
    coils = _coils(True, False, False)
    del coils["mode_stop"]
    assert MODE.compute(coils).quality is Quality.UNAVAILABLE


def _with_derived(derived: list[dict[str, object]]) -> dict[str, object]:
    raw: dict[str, object] = profile("smartgen-hgm6100n").model_dump()
    raw["derived"] = derived
    return raw


def test_one_of_sources_must_be_bool_metrics_of_the_profile() -> None:
    raw = _with_derived([{"name": "control_mode", "one_of": {"mode_auto": "auto", "engine_state": "stop"}}])
    with pytest.raises(
        ValueError, match=r"derived control_mode: one_of needs bool metrics; engine_state is not one"
    ):
        ModbusProfile.model_validate(raw)


def test_a_derived_name_cannot_shadow_a_point() -> None:
    raw = _with_derived([{"name": "engine_state", "one_of": {"mode_auto": "auto", "mode_stop": "stop"}}])
    with pytest.raises(ValueError, match=r"derived 'engine_state': already produced by point engine_state"):
        ModbusProfile.model_validate(raw)
