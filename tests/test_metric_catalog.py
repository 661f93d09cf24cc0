"""The metric catalog (devices/catalog.yaml): docs render from it, every shipped profile satisfies it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from devices.catalog import (
    CatalogMetric,
    builtin_catalog,
    check_dirs,
    check_profile,
    doc_table,
    main,
    render_markdown,
    with_doc_table,
)
from devices.reading import DeviceClass
from devices.registry import BUILTIN_DIR, ProfileError, load_profile

CONTRACTS = Path(__file__).resolve().parent.parent / "docs" / "contracts.md"
SHIPPED = sorted(BUILTIN_DIR.glob("*.yaml"))

ENV_HEADER = """\
model: acme-env
vendor: ACME
title: ACME room probe (test fixture)
device_class: env
protocol: snmp
"""
TEMP = "  - {name: temp_c, oid: 1.3.6.1.4.1.99999.1.1.0, scale: 0.1}\n"
RH = "  - {name: rh_pct, oid: 1.3.6.1.4.1.99999.1.2.0}\n"


def write(tmp_path: Path, text: str) -> Path:
    """A fixture profile acme-env.yaml in a temp folder."""
    path = tmp_path / "acme-env.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    """The catalog check's messages for one profile file."""
    return [p.format() for p in check_profile(load_profile(path), path)]


def test_docs_table_is_the_catalog_rendering() -> None:
    # Regenerate with: python -m devices.catalog --update-doc docs/contracts.md
    assert doc_table(CONTRACTS.read_text(encoding="utf-8")) == render_markdown(builtin_catalog())


def test_update_doc_rewrites_only_the_marked_table() -> None:
    text = CONTRACTS.read_text(encoding="utf-8")
    stale = with_doc_table(text, "| old |")
    assert doc_table(stale) == "| old |"
    assert with_doc_table(stale, render_markdown(builtin_catalog())) == text


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_profile_satisfies_the_catalog(path: Path) -> None:
    assert problems(path) == []


def test_known_gaps_are_declared_with_reasons() -> None:
    declared = {p.stem: set(load_profile(p).absent) for p in SHIPPED}
    assert declared["apc-smartups-modbus"] == {"battery_status", "output_source"}
    assert declared["liebert-gp-crac"] == {"status"}
    assert declared["rfc1628-ups"] == set()  # battery_replace: upsAlarmBatteryBad (oid_flags)
    assert declared["schneider-inrow-sc"] == {"cooling_capacity_pct"}


def test_every_catalog_class_has_a_required_metric_or_says_why_not() -> None:
    # contact devices are wired per site (leak only, smoke only): nothing is required of them; system and
    # compliance readings come from roomguard itself, not from device profiles.
    for cls, metrics in builtin_catalog().classes.items():
        own = all(m.source == "roomguard" for m in metrics)
        assert any(m.required for m in metrics) or cls is DeviceClass.CONTACT or own, cls


def test_missing_required_metric_without_reason_fails(tmp_path: Path) -> None:
    path = write(tmp_path, ENV_HEADER + "scalars:\n" + TEMP)
    (msg,) = problems(path)
    assert msg.startswith(f"{path}:4:")  # at device_class: the class decides what is required
    assert "env profiles must provide rh_pct (float %)" in msg
    assert "absent: {rh_pct: <why this model cannot>}" in msg
    assert main(["--check", str(tmp_path)]) == 1


def test_missing_required_metric_with_a_reason_passes(tmp_path: Path) -> None:
    path = write(
        tmp_path, ENV_HEADER + "absent: {rh_pct: the probe has no humidity sensor}\nscalars:\n" + TEMP
    )
    assert problems(path) == []
    assert main(["--check", str(tmp_path)]) == 0


def test_absent_needs_a_reason(tmp_path: Path) -> None:
    path = write(tmp_path, ENV_HEADER + "absent: {rh_pct: ' '}\nscalars:\n" + TEMP)
    with pytest.raises(ProfileError, match="rh_pct: give the reason"):
        load_profile(path)


def test_absent_for_a_metric_the_profile_has_fails(tmp_path: Path) -> None:
    path = write(tmp_path, ENV_HEADER + "absent: {rh_pct: no sensor}\nscalars:\n" + TEMP + RH)
    (msg,) = problems(path)
    assert msg.startswith(f"{path}:6:")
    assert "absent.rh_pct: rh_pct is declared absent, but the profile provides it" in msg


def test_absent_for_a_metric_not_in_the_catalog_fails(tmp_path: Path) -> None:
    path = write(tmp_path, ENV_HEADER + "absent: {humidity: no sensor}\nscalars:\n" + TEMP + RH)
    (msg,) = problems(path)
    assert "absent.humidity: humidity is not a canonical env metric" in msg
    assert "valid choices: temp_c, rh_pct, dew_point_c" in msg


def test_wrong_type_and_enum_states_fail(tmp_path: Path) -> None:
    path = tmp_path / "acme-ups.yaml"
    path.write_text("""\
model: acme-ups
vendor: ACME
title: ACME UPS (test fixture)
device_class: ups
protocol: snmp
absent: {battery_replace: test, battery_status: test, battery_charge_pct: test, runtime_s: test,
         input_voltage_v: test, output_load_pct: test, test_result: test}
scalars:
  - {name: output_source, oid: 1.3.6.1.4.1.99999.1.1.0, enum: {1: normal, 2: battery, 3: eco}}
  - {name: on_battery, oid: 1.3.6.1.4.1.99999.1.2.0}
""")
    msgs = problems(path)
    assert len(msgs) == 2, msgs
    assert (
        "scalars[0]: output_source: states ['eco'] are not canonical (valid choices: normal, battery"
        in msgs[0]
    )
    assert (
        "scalars[1]: on_battery is integer, the catalog's on_battery is bool (valid choices: bool)" in msgs[1]
    )


def test_fractional_point_does_not_satisfy_an_int_metric(tmp_path: Path) -> None:
    path = tmp_path / "acme-genset.yaml"
    path.write_text("""\
model: acme-genset
vendor: ACME
title: ACME genset (test fixture)
device_class: genset
protocol: modbus
absent: {control_mode: t, engine_state: t, oil_pressure_kpa: t, coolant_temp_c: t, fuel_level_pct: t,
         battery_voltage_v: t, gen_freq_hz: t, gen_l1n_voltage_v: t, gen_power_w: t, gen_load_pct: t,
         run_time_s: t}
modbus: {addressing: wire}
points:
  - {name: starts_count, table: holding, address: 0, type: uint16, scale: 0.5}
  - {name: alarm_oil, table: holding, address: 1, type: uint16, enum: {0: not_active, 1: tripped}}
""")
    msgs = problems(path)
    assert len(msgs) == 2, msgs
    assert "starts_count is number, the catalog's starts_count is int: it may carry fractions" in msgs[0]
    assert "alarm_oil: states ['tripped'] are not canonical" in msgs[1]  # falls under alarm_<name>


def test_a_poller_metric_cannot_come_from_a_profile(tmp_path: Path) -> None:
    path = tmp_path / "acme-door.yaml"
    path.write_text("""\
model: acme-door
vendor: ACME
title: ACME door (test fixture)
device_class: door
protocol: modbus
modbus: {addressing: wire}
points:
  - {name: door_open, table: discrete, address: 0, type: bool}
  - {name: door_state, table: holding, address: 0, type: uint16, enum: {0: closed, 1: open}}
""")
    (msg,) = problems(path)
    assert "door_state is derived by the poller; a profile must not produce it" in msg


def test_a_class_without_catalog_entries_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path, ENV_HEADER.replace("device_class: env", "device_class: system") + "scalars:\n" + TEMP
    )
    catalog = builtin_catalog()
    without_system = catalog.model_copy(
        update={"classes": {c: m for c, m in catalog.classes.items() if c is not DeviceClass.SYSTEM}}
    )
    (msg,) = [p.format() for p in check_profile(load_profile(path), path, without_system)]
    assert "device class system has no catalog entries; valid choices: ups, genset, crac, env, door" in msg


def test_an_unloadable_profile_is_reported_by_name(tmp_path: Path) -> None:
    write(tmp_path, ENV_HEADER + "scalars: 3\n")
    (problem,) = check_dirs(tmp_path)
    assert problem.file.endswith("acme-env.yaml")


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"name": "runtime_s", "unit": "min", "type": "float", "meaning": "x"}, "names its unit 's'"),
        (
            {"name": "probe<n>_temp_c", "unit": "°C", "type": "float", "required": True, "meaning": "x"},
            "only a single device metric can be required",
        ),
        ({"name": "mode", "type": "enum", "meaning": "x"}, "type enum needs them"),
        ({"name": "mode", "type": "enum", "values": ["Auto"], "meaning": "x"}, "must be lower_snake_case"),
        ({"name": "Temp", "type": "float", "meaning": "x"}, "must be lower_snake_case"),
    ],
)
def test_catalog_entries_are_validated(entry: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        CatalogMetric.model_validate(entry)


def test_patterns_match_their_family_only() -> None:
    cat = builtin_catalog()
    assert cat.find(DeviceClass.ENV, "probe12_temp_c").name == "probe<n>_temp_c"  # type: ignore[union-attr]
    assert cat.find(DeviceClass.ENV, "probe_x_temp_c") is None
    assert cat.find(DeviceClass.GENSET, "alarm_low_fuel_level").name == "alarm_<name>"  # type: ignore[union-attr]
    assert cat.find(DeviceClass.GENSET, "alarm_count").name == "alarm_count"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["quality", "error", "poll_duration_s", "temp_c_quality"])
def test_ingest_field_names_are_reserved(name: str) -> None:
    """A metric named like a field ingest writes beside the metrics would be overwritten in the database."""
    with pytest.raises(ValidationError, match="reserved for ingest's own fields"):
        CatalogMetric(name=name, type="float", meaning="x")
