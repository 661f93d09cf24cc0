"""Codec: decode/encode of every point type under every byte/word order, sentinels, errors."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modbus_support import wire_point
from pydantic import ValidationError

from devices.codec import compile_decoder, decode_point, encode_point
from devices.modbus_profile import DSE_NIBBLE_STATES, ModbusProfile, modicon_to_wire
from devices.reading import Metric, Quality

ORDERS = [("big", "big"), ("little", "big"), ("big", "little"), ("little", "little")]  # ABCD CDAB BADC DCBA
INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def one(wp, regs) -> Metric:
    [m] = decode_point(wp, regs)
    return m


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(("word", "byte"), ORDERS)
@pytest.mark.parametrize("kind", sorted(INT_RANGES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_integer_round_trip(kind, word, byte, data):
    lo, hi = INT_RANGES[kind]
    value = data.draw(st.integers(lo, hi))
    wp = wire_point(word, byte, type=kind)
    regs = encode_point(wp, value)
    assert len(regs) == wp.width
    assert all(0 <= r <= 0xFFFF for r in regs)
    assert one(wp, regs) == Metric("x", value)


@pytest.mark.parametrize(("word", "byte"), ORDERS)
@settings(max_examples=80, deadline=None)
@given(value=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_round_trip(word, byte, value):
    wp = wire_point(word, byte, type="float32")
    m = one(wp, encode_point(wp, value))
    assert m.quality is Quality.GOOD
    assert m.value == value


@pytest.mark.parametrize(("word", "byte"), ORDERS)
@settings(max_examples=80, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_float64_round_trip(word, byte, value):
    wp = wire_point(word, byte, type="float64")
    m = one(wp, encode_point(wp, value))
    assert m.quality is Quality.GOOD
    assert m.value == value


@pytest.mark.parametrize(("word", "byte"), ORDERS)
@settings(max_examples=60, deadline=None)
@given(raw=st.integers(-32768, 32767))
def test_scaled_int16_round_trip(word, byte, raw):
    wp = wire_point(word, byte, type="int16", scale=0.1)
    value = round(raw * 0.1, 6)
    assert one(wp, encode_point(wp, value)).value == pytest.approx(value, abs=1e-9)


@pytest.mark.parametrize(("word", "byte"), ORDERS)
@settings(max_examples=60, deadline=None)
@given(text=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=8))
def test_string_round_trip(word, byte, text):
    wp = wire_point(word, byte, type="string", count=4)
    assert one(wp, encode_point(wp, text)) == Metric("x", text)


@pytest.mark.parametrize(("word", "byte"), ORDERS)
@settings(max_examples=60, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=32, max_size=32))
def test_bitfield_round_trip(word, byte, flags):
    bits = {i: f"b{i}" for i in range(0, 32, 3)}
    wp = wire_point(word, byte, type="bitfield", count=2, bits=bits)
    values = {name: flags[i] for i, name in bits.items()}
    got = {m.name: m.value for m in decode_point(wp, encode_point(wp, values))}
    assert got == values


@pytest.mark.parametrize(("word", "byte"), ORDERS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_nibbles_round_trip(word, byte, data):
    names = [f"a{i}" for i in range(9)] + [None, "a10"]
    wp = wire_point(word, byte, type="nibbles", nibble_names=names)
    states = sorted(set(DSE_NIBBLE_STATES.values()))
    values = {f"alarm_{n}": data.draw(st.sampled_from(states)) for n in names if n is not None}
    got = {m.name: m.value for m in decode_point(wp, encode_point(wp, values))}
    assert got == values


@pytest.mark.parametrize("table", ["coil", "discrete"])
@pytest.mark.parametrize("value", [True, False])
def test_bits_round_trip(table, value):
    wp = wire_point(type="bool", table=table)
    assert encode_point(wp, value) == [value]
    assert one(wp, [value]) == Metric("x", value)


# -------------------------------------------------------------------------------------- byte/word order


def test_word_and_byte_orders_of_a_float_are_distinct():
    abcd = struct.unpack(">HH", struct.pack(">f", 21.75))
    assert encode_point(wire_point("big", "big", type="float32"), 21.75) == list(abcd)
    assert encode_point(wire_point("little", "big", type="float32"), 21.75) == [abcd[1], abcd[0]]
    swapped = [((r & 0xFF) << 8) | (r >> 8) for r in abcd]
    assert encode_point(wire_point("big", "little", type="float32"), 21.75) == swapped
    assert encode_point(wire_point("little", "little", type="float32"), 21.75) == swapped[::-1]
    # CDAB data decoded as ABCD is a denormal, not 21.75 (devices.md §5.2)
    assert one(wire_point(type="float32"), [abcd[1], abcd[0]]).value != 21.75


def test_dse_u32_msw_first():
    wp = wire_point(type="uint32", scale=0.1)
    assert one(wp, [0, 2301]).value == 230.1
    assert one(wp, [1, 0]).value == 6553.6


# ---------------------------------------------------------------------------------------------- transforms


def test_signed_negative():
    assert one(wire_point(type="int16"), [0xFFFB]).value == -5
    assert one(wire_point(type="int32"), [0xFFFF, 0xFB50]).value == -1200


@pytest.mark.parametrize(
    ("kind", "sentinels", "regs"),
    [
        ("int16", [0x7FFF], [0x7FFF]),
        ("uint16", [0xFFFF, 0xFFFE], [0xFFFE]),
        ("uint32", [0xFFFFFFFF], [0xFFFF, 0xFFFF]),
        ("int32", [0x7FFFFFFF], [0x7FFF, 0xFFFF]),
        ("int16", [-1], [0xFFFF]),  # a negative sentinel matches the bit pattern
    ],
)
def test_sentinels_are_unavailable(kind, sentinels, regs):
    assert one(wire_point(type=kind, sentinels=sentinels), regs) == Metric("x", None, Quality.UNAVAILABLE)


def test_sentinel_encodes_back():
    wp = wire_point(type="int16", sentinels=[0x7FFF, 0x7FFE])
    assert encode_point(wp, None) == [0x7FFF]


def test_float_nan_is_unavailable():
    nan = struct.unpack(">HH", struct.pack(">f", math.nan))
    assert one(wire_point(type="float32"), list(nan)).quality is Quality.UNAVAILABLE


def test_enum_and_unknown_state():
    wp = wire_point(type="uint16", enum={0: "stop", 1: "auto"})
    assert one(wp, [1]).value == "auto"
    assert one(wp, [9]).value == "unknown_9"
    assert encode_point(wp, "stop") == [0]


def test_tenths_fahrenheit_to_celsius():
    wp = wire_point(type="int32", scale=0.1, convert="f_to_c", precision=2)
    assert one(wp, [0, 653]).value == 18.5
    assert encode_point(wp, 30.0) == [0, 860]


def test_binary_point():
    wp = wire_point(type="uint16", binary_point=9, precision=1)
    assert one(wp, [49254]).value == 96.2
    assert encode_point(wp, 100.0) == [51200]


def test_string_strips_nul_and_spaces():
    wp = wire_point(type="string", count=4)
    regs = list(struct.unpack(">4H", b"SRT3K \x00\x00"))
    assert one(wp, regs).value == "SRT3K"


def test_bitfield_bits_from_lsb():
    wp = wire_point(type="bitfield", count=2, bits={1: "online", 2: "on_battery", 21: "overload"})
    got = {m.name: m.value for m in decode_point(wp, [0x0020, 0x0004])}
    assert got == {"online": False, "on_battery": True, "overload": True}


def test_nibbles_first_alarm_in_high_nibble():
    wp = wire_point(type="nibbles", nibble_names=["estop", "low_oil", None, "high_temp", "x5"])
    got = {m.name: m.value for m in decode_point(wp, [0x3102, 0xF000])}
    assert got == {
        "alarm_estop": "shutdown",
        "alarm_low_oil": "not_active",
        "alarm_high_temp": "warning",
        "alarm_x5": "unimplemented",
    }


# APC ReplaceBatteryTestStatus_BF (NUT apc_modbus.h): result bits 0-5, source bits 6-8, modifier bits 9-11.
SOURCE = {0: "none", 1: "protocol", 2: "local_ui", 4: "internal"}


def test_mask_cuts_a_field_out_of_the_register():
    result = wire_point(type="uint16", mask=0x003F, enum={4: "passed", 8: "failed"})
    source = wire_point(type="uint16", mask=0x01C0, enum=SOURCE)
    assert one(result, [0x0104]).value == "passed"  # 0x0104 whole would be state 260
    assert one(source, [0x0104]).value == "internal"  # (0x0104 & 0x01C0) >> 6 = 4
    assert one(source, [0x0044]).value == "protocol"
    assert one(wire_point(type="uint32", mask=0x000F0000), [0x0003, 0xFFFF]).value == 3


def test_mask_applies_after_the_sentinel_check():
    wp = wire_point(type="uint16", mask=0x00F0, sentinels=[0xFFFF])
    assert one(wp, [0xFFFF]) == Metric("x", None, Quality.UNAVAILABLE)
    assert one(wp, [0xFF3F]).value == 3


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 7))
def test_mask_round_trip(n):
    wp = wire_point(type="uint16", mask=0x0E00)
    regs = encode_point(wp, n)
    assert regs == [n << 9]
    assert one(wp, regs).value == n


def test_mask_encode_rejects_what_the_field_cannot_hold():
    with pytest.raises(ValueError, match="does not fit the bit field"):
        encode_point(wire_point(type="uint16", mask=0x01C0), 8)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "int16", "mask": 0x00F0}, "only for"),
        ({"type": "float32", "mask": 0x00F0}, "only for"),
        ({"type": "uint16", "mask": 0x10000}, "beyond the 16-bit"),
        ({"type": "uint16", "mask": 0x0105}, "adjacent bits"),
        ({"type": "uint16", "mask": 0}, "greater than or equal to 1"),
    ],
)
def test_mask_schema_errors(fields, message):
    with pytest.raises(ValidationError, match=message):
        wire_point(**fields)


def test_masked_points_on_one_register_must_not_overlap():
    def prof(second: dict[str, object]) -> ModbusProfile:
        first = {"name": "result", "table": "holding", "address": 23, "mask": 0x003F}
        return ModbusProfile.model_validate(base(addressing="wire") | {"points": [first, second]})

    ok = prof({"name": "source", "table": "holding", "address": 23, "mask": 0x01C0})
    assert [p.point.mask_shift for p in ok.wire_points()] == [0, 6]
    with pytest.raises(ValidationError, match="overlaps another field of register 23"):
        prof({"name": "source", "table": "holding", "address": 23, "mask": 0x0030})
    with pytest.raises(ValidationError, match="shares its register with result but is uint32"):
        prof({"name": "source", "table": "holding", "address": 23, "mask": 0x01C0, "type": "uint32"})


# ---------------------------------------------------------------------------------------------- errors


def test_short_data_is_decode_error_not_exception():
    assert one(wire_point(type="uint32"), [1]) == Metric("x", None, Quality.DECODE_ERROR)
    assert one(wire_point(type="uint16"), []) == Metric("x", None, Quality.DECODE_ERROR)
    bad = decode_point(wire_point(type="bitfield", bits={0: "a", 1: "b"}), [])
    assert [m.quality for m in bad] == [Quality.DECODE_ERROR] * 2


def test_invalid_utf8_string_is_decode_error():
    assert one(wire_point(type="string", count=1), [0xFFFE]).quality is Quality.DECODE_ERROR


def test_compiled_decoder_memo_tracks_changes():
    dec = compile_decoder(wire_point(type="uint16", scale=0.1))
    seen = []
    for regs in ([100], [100], [7], [100]):
        out: list[Metric] = []
        dec(regs, 0, out)
        seen.append(out[0].value)
    assert seen == [10.0, 10.0, 0.7, 10.0]


def test_encode_rejects_out_of_range():
    with pytest.raises(ValueError, match="does not fit"):
        encode_point(wire_point(type="uint16"), 70000)
    with pytest.raises(ValueError, match="not one of"):
        encode_point(wire_point(type="uint16", enum={0: "a"}), "b")


# ---------------------------------------------------------------------------------------------- schema


def base(**modbus: object) -> dict[str, object]:
    return {
        "model": "t",
        "vendor": "v",
        "title": "t",
        "device_class": "ups",
        "protocol": "modbus",
        "modbus": modbus,
    }


def test_modicon_addressing_resolves_tables():
    prof = ModbusProfile.model_validate(
        base(addressing="modicon")
        | {
            "points": [
                {"name": "a", "address": 40001},
                {"name": "b", "address": 30002},
                {"name": "c", "address": 10003, "type": "bool"},
            ]
        }
    )
    assert [(w.table, w.address) for w in prof.wire_points()] == [
        ("holding", 0),
        ("input", 1),
        ("discrete", 2),
    ]
    assert modicon_to_wire(400001) == ("holding", 0)


@pytest.mark.parametrize(
    ("modbus", "point", "message"),
    [
        ({}, {"name": "a", "table": "holding", "address": 0}, "addressing"),
        ({"addressing": "wire"}, {"name": "a", "address": 0}, "table is required"),
        ({"addressing": "wire"}, {"name": "a", "table": "holding", "address": 400001}, "Modicon"),
        ({"addressing": "modicon"}, {"name": "a", "table": "input", "address": 40001}, "holding address"),
        ({"addressing": "modicon"}, {"name": "a", "address": 20001}, "not a Modicon number"),
        (
            {"addressing": "wire"},
            {"name": "a", "table": "coil", "address": 0, "type": "uint16"},
            "single bits",
        ),
        (
            {"addressing": "wire"},
            {"name": "a", "table": "holding", "address": 0, "bits": {0: "x"}},
            "bitfield",
        ),
        ({"addressing": "wire"}, {"name": "a", "table": "holding", "address": 0, "type": "string"}, "count"),
        ({"addressing": "wire"}, {"name": "a", "table": "holding", "address": 0, "bogus": 1}, "Extra inputs"),
        (
            {"addressing": "wire", "max_registers_per_read": 200},
            {"name": "a", "table": "holding", "address": 0},
            "125",
        ),
        ({"addressing": "wire"}, {"name": "Bad", "table": "holding", "address": 0}, "lower_snake"),
    ],
)
def test_schema_errors_are_helpful(modbus, point, message):
    with pytest.raises(ValidationError, match=message):
        ModbusProfile.model_validate(base(**modbus) | {"points": [point]})


def test_duplicate_metric_names_rejected():
    points = [
        {"name": "a", "table": "holding", "address": 0},
        {"name": "a", "table": "holding", "address": 1},
    ]
    with pytest.raises(ValidationError, match="produced by both"):
        ModbusProfile.model_validate(base(addressing="wire") | {"points": points})


@pytest.mark.parametrize("table", ["coil", "discrete", "holding"])
def test_bool_point_with_enum_names_its_state(table):
    # SmartGen HGM6100N alarm coils: 1 = the alarm is active, as the coil's section (shutdown/warning) says.
    states = {0: "not_active", 1: "shutdown"}
    wp = wire_point(table=table, type="bool", name="alarm_low_oil_pressure", enum=states)
    assert decode_point(wp, [True]) == [Metric("alarm_low_oil_pressure", "shutdown")]
    assert decode_point(wp, [0]) == [Metric("alarm_low_oil_pressure", "not_active")]
    assert [bool(v) for v in encode_point(wp, "shutdown")] == [True]
    assert [bool(v) for v in encode_point(wp, "not_active")] == [False]
