"""SNMP profile features the shipped profiles rely on: polarity, availability, fallbacks, ENTITY-SENSOR."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from devices.reading import Quality
from devices.snmp_codec import NO_SUCH, Oid, decode, encode_profile, encoded_values, plan_requests
from devices.snmp_profile import ENTITY_SENSOR_TABLE, SnmpColumn, SnmpProfile
from tests.snmp_fixtures import snmp_profile, snmp_profiles

BASE = "1.3.6.1.4.1.99999.7"


def profile(column: dict[str, Any]) -> SnmpProfile:
    """A fixture door profile with one table column (row 1) aggregated into door_open."""
    col = {"oid": f"{BASE}.1.3", "aggregate": {"name": "door_open", "func": "first"}, **column}
    return SnmpProfile.model_validate(
        {
            "model": "acme-door",
            "vendor": "ACME",
            "title": "fixture",
            "device_class": "door",
            "protocol": "snmp",
            "tables": [{"name": "t", "columns": [col]}],
        }
    )


POLAR = {
    "true_values": [4],
    "false_values": [2],
    "polarity": {"oid": f"{BASE}.1.7", "normal": [0], "inverted": [1]},
    "example": False,
}


@pytest.mark.parametrize(
    ("status", "polarity", "expected"),
    [(4, 0, True), (2, 0, False), (4, 1, False), (2, 1, True), (4, None, None), (4, 5, None)],
)
def test_polarity_negates_per_row_and_unknown_is_unavailable(
    status: int, polarity: int | None, expected: bool | None
) -> None:
    values: dict[str, Any] = {f"{BASE}.1.3.1": status}
    if polarity is not None:
        values[f"{BASE}.1.7.1"] = polarity
    (m,) = decode(profile(POLAR), values)
    assert (m.value, m.quality) == (expected, Quality.GOOD if expected is not None else Quality.UNAVAILABLE)


def test_polarity_column_is_served_the_normal_way_round() -> None:
    p = profile(POLAR)
    enc = encode_profile(p, {"door_open": True})
    assert enc[f"{BASE}.1.7.1"] == ("integer", 0)
    assert [m.value for m in decode(p, encoded_values(enc))] == [True]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"polarity": POLAR["polarity"]}, "bool columns"),
        ({**POLAR, "polarity": {"oid": f"{BASE}.1.7", "normal": [0], "inverted": [0]}}, "both normal"),
        ({**POLAR, "polarity": {"oid": f"{BASE}.1.7", "normal": [], "inverted": [1]}}, "at least 1"),
    ],
)
def test_polarity_schema_errors(column: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        profile(column)


def test_simulated_entity_sensors_follow_rfc3433_precision() -> None:
    """percentRH is served with precision 0 (RFC 3433: not a fixed-point type), celsius in tenths."""
    p = snmp_profile("entity-sensor")
    enc = encode_profile(p, {"temp_c": 21.7, "rh_pct": 48.0})
    assert [enc[f"{ENTITY_SENSOR_TABLE}.{c}.1"][1] for c in (1, 3, 4)] == [8, 1, 217]
    assert [enc[f"{ENTITY_SENSOR_TABLE}.{c}.2"][1] for c in (1, 3, 4)] == [9, 0, 48]
    got = {m.name: m.value for m in decode(p, encoded_values(enc))}
    assert got == {"temp_c": 21.7, "rh_pct": 48}


FLAG = {"oid": f"{BASE}.2.4.1", "unavailable": [0], "example": 1, "type": "gauge"}


def flagged() -> SnmpProfile:
    """Two scalars sharing one availability flag, as Geist's internal sensor row does."""
    return SnmpProfile.model_validate(
        {
            "model": "acme-env",
            "vendor": "ACME",
            "title": "fixture",
            "device_class": "env",
            "protocol": "snmp",
            "scalars": [
                {
                    "name": "temp_c",
                    "oid": f"{BASE}.2.5.1",
                    "scale": 0.1,
                    "availability": FLAG,
                    "example": 21.0,
                },
                {"name": "rh_pct", "oid": f"{BASE}.2.6.1", "availability": FLAG, "example": 40},
            ],
        }
    )


@pytest.mark.parametrize(("flag", "good"), [(0, False), (1, True), (2, True), (None, True)])
def test_availability_flag_voids_readings(flag: int | None, good: bool) -> None:
    values: dict[str, Any] = {f"{BASE}.2.5.1": 215, f"{BASE}.2.6.1": 41}
    if flag is not None:
        values[f"{BASE}.2.4.1"] = flag
    got = {m.name: m.value for m in decode(flagged(), values)}
    assert got == ({"temp_c": 21.5, "rh_pct": 41} if good else {"temp_c": None, "rh_pct": None})


def test_availability_flag_is_served_available_if_any_reading_is() -> None:
    p = flagged()
    assert encode_profile(p, {})[f"{BASE}.2.4.1"] == ("gauge", 1)
    assert encode_profile(p, {"temp_c": None})[f"{BASE}.2.4.1"] == ("gauge", 1)
    assert encode_profile(p, {"temp_c": None, "rh_pct": None})[f"{BASE}.2.4.1"] == ("gauge", 0)


def test_availability_example_must_be_available() -> None:
    with pytest.raises(ValidationError, match="available flag value"):
        profile({**POLAR, "polarity": None, "availability": {**FLAG, "example": 0}})


def test_apc_output_status_maps_every_powernet_state() -> None:
    """upsBasicOutputStatus 1..28 (PowerNet-MIB v4.5.2) all have a state; none decodes as unknown_<n>."""
    point = next(p for p in snmp_profile("apc-powernet-ups").scalars if p.name == "output_source")
    assert point.enum is not None
    assert sorted(point.enum) == list(range(1, 29))


@pytest.mark.parametrize("model", snmp_profiles())
def test_probe_recognises_a_device_by_objects_the_profile_reads(model: str) -> None:
    """Every match.requires_oids entry is (under, or above) an object one poll of the profile reads."""
    profile = snmp_profile(model)
    plan = plan_requests(profile)
    read = (*plan.get_oids, *plan.walk_roots)
    for oid in profile.match.requires_oids:
        assert any(o == oid or o.startswith(oid + ".") or oid.startswith(o + ".") for o in read), oid


def with_fallbacks() -> SnmpProfile:
    """A tenths scalar and a tenths column, each falling back to an integer object of older firmware."""
    return SnmpProfile.model_validate(
        {
            "model": "acme-env",
            "vendor": "ACME",
            "title": "fixture",
            "device_class": "env",
            "protocol": "snmp",
            "scalars": [
                {
                    "name": "temp_c",
                    "oid": f"{BASE}.3.2.0",
                    "scale": 0.1,
                    "example": 21.5,
                    "fallback": {"oid": f"{BASE}.3.1.0", "sentinels": [255]},
                }
            ],
            "tables": [
                {
                    "name": "probes",
                    "columns": [
                        {
                            "oid": f"{BASE}.4.1.50",
                            "metric": "probe{index}_temp_c",
                            "scale": 0.1,
                            "fallback": {"oid": f"{BASE}.4.1.3"},
                        }
                    ],
                }
            ],
        }
    )


def test_fallback_is_read_only_where_the_object_is_missing() -> None:
    values: dict[str, Any] = {
        f"{BASE}.3.2.0": NO_SUCH,  # newer object absent: the integer one is read
        f"{BASE}.3.1.0": 22,
        f"{BASE}.4.1.50.2": 215,  # row 2 has the tenths column: it wins over its integer cell
        f"{BASE}.4.1.3.2": 21,
        f"{BASE}.4.1.3.3": 19,  # row 3 only has the integer column
    }
    got = {m.name: m.value for m in decode(with_fallbacks(), values)}
    assert got == {"temp_c": 22, "probe2_temp_c": 21.5, "probe3_temp_c": 19}
    assert [m.value for m in decode(with_fallbacks(), {f"{BASE}.3.1.0": 255})][:1] == [None]


def test_fallback_objects_are_read_with_the_poll() -> None:
    plan = plan_requests(with_fallbacks())
    assert plan.get_oids == (f"{BASE}.3.2.0", f"{BASE}.3.1.0")
    assert plan.walk_roots == (f"{BASE}.4.1.50", f"{BASE}.4.1.3")


def test_fallback_must_decode_to_the_same_kind() -> None:
    with pytest.raises(ValidationError, match="fallback decodes to a enum, the point to a number"):
        SnmpProfile.model_validate(
            {
                "model": "acme-env",
                "vendor": "ACME",
                "title": "fixture",
                "device_class": "env",
                "protocol": "snmp",
                "scalars": [
                    {"name": "x", "oid": f"{BASE}.5.0", "fallback": {"oid": f"{BASE}.6.0", "enum": {1: "on"}}}
                ],
            }
        )


# ------------------------------------------------------------------------------- oid_flags

ALARM_COUNT = f"{BASE}.6.1.0"
ALARM_DESCR = f"{BASE}.6.2.1.2"
WELL_KNOWN = f"{BASE}.6.3"


def alarm_table(**flags_spec: Any) -> SnmpProfile:
    """A UPS-MIB-like alarm table: upsAlarmsPresent-style count, an OID-valued Descr column."""
    spec = {
        "count": ALARM_COUNT,
        "base": WELL_KNOWN,
        "flags": {1: "battery_bad", 9: "on_bypass"},
        **flags_spec,
    }
    return SnmpProfile.model_validate(
        {
            "model": "acme-ups",
            "vendor": "ACME",
            "title": "fixture",
            "device_class": "ups",
            "protocol": "snmp",
            "scalars": [{"name": "alarms_present", "oid": ALARM_COUNT, "type": "gauge", "example": 0}],
            "tables": [
                {"name": "alarms", "columns": [{"oid": ALARM_DESCR, "type": "oid", "oid_flags": spec}]}
            ],
        }
    )


def flag_values(count: int | None, *rows: tuple[int, str]) -> dict[str, Any]:
    values: dict[str, Any] = {f"{ALARM_DESCR}.{i}": Oid(oid) for i, oid in rows}
    if count is not None:
        values[ALARM_COUNT] = count
    return values


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # rows present: a flag is true when any row holds it, false otherwise (sparse ids, leading dot)
        (flag_values(2, (95, f"{WELL_KNOWN}.9"), (203, f".{WELL_KNOWN}.17")), (False, True)),
        (flag_values(1, (1, f"{WELL_KNOWN}.1")), (True, False)),
        # the table was read and is empty: all false
        (flag_values(0), (False, False)),
        # no count and no rows: the agent may not implement the table; unavailable
        (flag_values(None), (None, None)),
        # the count says alarms are present but no row was read: unavailable
        (flag_values(2), (None, None)),
        # fewer rows than the count: what is seen is true, the rest unknown
        (flag_values(2, (4, f"{WELL_KNOWN}.9")), (None, True)),
        # rows without a count (the walk reached the table's end): read
        (flag_values(None, (4, f"{WELL_KNOWN}.1")), (True, False)),
        # the count answered noSuchInstance
        ({ALARM_COUNT: NO_SUCH}, (None, None)),
    ],
)
def test_oid_flags_true_false_unavailable(values: dict[str, Any], expected: tuple[bool | None, ...]) -> None:
    got = {m.name: m for m in decode(alarm_table(), values)}
    for name, want in zip(("battery_bad", "on_bypass"), expected, strict=True):
        assert got[name].value is want, name
        assert got[name].quality is (Quality.UNAVAILABLE if want is None else Quality.GOOD), name


def test_oid_flags_keys_may_be_whole_oids_outside_base() -> None:
    vendor = "1.3.6.1.4.1.99999.9.1"  # an implementation-defined alarm in the same table
    p = alarm_table(flags={1: "battery_bad", vendor: "vendor_alarm"})
    assert p.tables[0].columns[0].oid_flags is not None
    assert list(p.tables[0].columns[0].oid_flags.flags) == [f"{WELL_KNOWN}.1", vendor]
    got = {m.name: m.value for m in decode(p, flag_values(1, (7, vendor)))}
    assert got == {"alarms_present": 1, "battery_bad": False, "vendor_alarm": True}


def test_oid_flags_count_and_column_are_read_with_the_poll() -> None:
    plan = plan_requests(alarm_table())
    assert plan.get_oids == (ALARM_COUNT,)
    assert plan.walk_roots == (ALARM_DESCR,)


def test_oid_flags_simulator_serves_one_row_per_true_flag() -> None:
    p = alarm_table()
    enc = encode_profile(p, {})
    assert enc[ALARM_COUNT] == ("gauge", 0)
    assert not [o for o in enc if o.startswith(ALARM_DESCR + ".")]
    enc = encode_profile(p, {"on_bypass": True, "battery_bad": True})
    assert enc[ALARM_COUNT] == ("gauge", 2)
    assert enc[f"{ALARM_DESCR}.1"] == ("oid", f"{WELL_KNOWN}.1")
    assert enc[f"{ALARM_DESCR}.2"] == ("oid", f"{WELL_KNOWN}.9")
    got = {m.name: m.value for m in decode(p, encoded_values(enc))}
    assert got == {"alarms_present": 2, "battery_bad": True, "on_bypass": True}
    # an explicit count without rows stays: the table then reads as not read
    got = {m.name: m.value for m in decode(p, encoded_values(encode_profile(p, {"alarms_present": 3})))}
    assert got == {"alarms_present": 3, "battery_bad": None, "on_bypass": None}


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"type": "integer"}, "needs type: oid"),
        ({"metric": "alarm_{index}"}, r"drop \['metric'\]"),
        ({"example": "x"}, r"drop \['example'\]"),
    ],
)
def test_oid_flags_column_makes_only_flags(column: dict[str, Any], message: str) -> None:
    col = {
        "oid": ALARM_DESCR,
        "type": "oid",
        "oid_flags": {"count": ALARM_COUNT, "flags": {"1.3.6.1.9": "x"}},
    }
    with pytest.raises(ValidationError, match=message):
        SnmpColumn.model_validate({**col, **column})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"base": None}, "it needs base"),
        ({"flags": {1: "a", f"{WELL_KNOWN}.1": "b"}}, "listed twice"),
        ({"flags": {1: "a", 2: "a"}}, r"names \['a'\] are listed twice"),
        ({"flags": {}}, "at least 1"),
        ({"flags": {1: "Bad"}}, "lower_snake_case"),
    ],
)
def test_oid_flags_schema_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        alarm_table(**spec)


def test_oid_flags_column_is_alone_in_its_table() -> None:
    with pytest.raises(ValidationError, match="only column"):
        SnmpProfile.model_validate(
            {
                "model": "acme-ups",
                "vendor": "ACME",
                "title": "fixture",
                "device_class": "ups",
                "protocol": "snmp",
                "tables": [
                    {
                        "name": "alarms",
                        "columns": [
                            {
                                "oid": ALARM_DESCR,
                                "type": "oid",
                                "oid_flags": {"count": ALARM_COUNT, "flags": {"1.3.6.1.9": "x"}},
                            },
                            {"oid": f"{BASE}.6.2.1.3", "metric": "alarm_time_{index}", "type": "timeticks"},
                        ],
                    }
                ],
            }
        )


def test_oid_flags_metric_names_are_unique_in_the_profile() -> None:
    with pytest.raises(ValidationError, match="'alarms_present' is defined twice"):
        alarm_table(flags={1: "alarms_present"})
