"""MQTT wire format: topics, exact payloads, round trips and the WireError-only decoding guarantee."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality
from devices.wire import (
    EVENTS_SCHEMA,
    READINGS_SCHEMA,
    STATUS_SCHEMA,
    DeviceStatus,
    WireError,
    WireEvent,
    decode_event,
    decode_poll,
    decode_status,
    encode_event,
    encode_poll,
    encode_status,
    format_ts,
    topic_alert,
    topic_collector_status,
    topic_events,
    topic_readings,
    topic_status,
)

TS = datetime(2026, 11, 3, 2, 15, 0, 123456, tzinfo=UTC)
REF = DeviceRef("tpe1", "機房A", "ups-1", DeviceClass.UPS, "eaton-93e", {"zone": "北區", "rack": "R01"})


def _poll(**kw: object) -> PollResult:
    base: dict[str, object] = {
        "ref": REF,
        "ts": TS,
        "duration_s": 0.0125,
        "metrics": (
            Metric("battery_charge_pct", 97.5),
            Metric("on_battery", False),
            Metric("output_source", "normal"),
            Metric("runtime_s", 5400),
            Metric("battery_temp_c", None, Quality.UNAVAILABLE),
        ),
    }
    base.update(kw)
    return PollResult(**base)  # type: ignore[arg-type]


def _same(decoded: PollResult, original: PollResult) -> None:
    a, b = decoded, original
    assert a == b
    # == treats 1, 1.0 and True alike; the wire must keep the exact Python type too.
    assert [type(m.value) for m in a.metrics] == [type(m.value) for m in b.metrics]
    assert a.ts.tzinfo is UTC


# --- topics -------------------------------------------------------------------------------------------


def test_topics() -> None:
    p = "roomguard/v1"
    assert topic_readings(p, "tpe1", "rm1", "ups-1") == "roomguard/v1/tpe1/rm1/ups-1/readings"
    assert topic_status(p, "tpe1", "rm1", "ups-1") == "roomguard/v1/tpe1/rm1/ups-1/status"
    assert topic_events(p, "tpe1") == "roomguard/v1/tpe1/events"
    assert topic_alert(p, "tpe1", "a17") == "roomguard/v1/tpe1/alerts/a17"
    assert topic_collector_status(p, "tpe1", "edge-01") == "roomguard/v1/tpe1/_collector/edge-01/status"
    assert topic_readings(p, "台北", "機房", "溫濕度1") == "roomguard/v1/台北/機房/溫濕度1/readings"


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x\0y"])
def test_topic_level_rejected(bad: str) -> None:
    with pytest.raises(WireError, match="device"):
        topic_readings("roomguard/v1", "s", "r", bad)


def test_topic_prefix_and_reserved_room() -> None:
    with pytest.raises(WireError, match="prefix"):
        topic_events("roomguard//v1", "s")
    with pytest.raises(WireError, match="prefix"):
        topic_events("roomguard/+", "s")
    with pytest.raises(WireError, match="reserved"):
        topic_status("roomguard/v1", "s", "_collector", "d")


# --- readings: exact payload --------------------------------------------------------------------------


def test_encode_poll_exact() -> None:
    payload = encode_poll(_poll(), 42)
    expected = (
        '{"schema":"roomguard.readings/1","seq":42,"ts":"2026-11-03T02:15:00.123456Z",'
        '"device":{"site":"tpe1","room":"機房A","device":"ups-1","class":"ups","model":"eaton-93e",'
        '"tags":{"zone":"北區","rack":"R01"}},"quality":"good","error":null,"duration_s":0.0125,'
        '"metrics":[{"name":"battery_charge_pct","value":97.5,"quality":"good"},'
        '{"name":"on_battery","value":false,"quality":"good"},'
        '{"name":"output_source","value":"normal","quality":"good"},'
        '{"name":"runtime_s","value":5400,"quality":"good"},'
        '{"name":"battery_temp_c","value":null,"quality":"unavailable"}]}'
    )
    assert payload.decode() == expected
    result, seq = decode_poll(payload)
    assert seq == 42
    _same(result, _poll())


def test_ts_converted_to_utc_and_zero_microseconds_kept() -> None:
    taipei = timezone(timedelta(hours=8))
    assert format_ts(datetime(2026, 1, 1, 8, 0, tzinfo=taipei)) == "2026-01-01T00:00:00.000000Z"
    with pytest.raises(WireError, match="timezone-aware"):
        encode_poll(_poll(ts=datetime(2026, 1, 1)), 1)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_becomes_decode_error(value: float) -> None:
    result, _ = decode_poll(encode_poll(_poll(metrics=(Metric("temp_c", value),)), 1))
    assert result.metrics == (Metric("temp_c", None, Quality.DECODE_ERROR),)


def test_failed_poll_round_trip() -> None:
    failed = _poll(
        metrics=(Metric("temp_c", None, Quality.COMM_ERROR),),
        quality=Quality.COMM_ERROR,
        error="timeout after 2.0 s",
    )
    _same(decode_poll(encode_poll(failed, 7))[0], failed)


@pytest.mark.parametrize("seq", [-1, True, 1.5])
def test_bad_seq_refused(seq: object) -> None:
    with pytest.raises(WireError, match="seq"):
        encode_poll(_poll(), seq)  # type: ignore[arg-type]


# --- readings: rejection with reasons -----------------------------------------------------------------


def _mutated(mutate: object) -> bytes:
    obj = json.loads(encode_poll(_poll(), 3))
    mutate(obj)  # type: ignore[operator]
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda o: o.pop("seq"), "missing field 'seq'"),
        (lambda o: o.update(schema="roomguard.readings/2"), "supported: roomguard.readings/1"),
        (lambda o: o.pop("schema"), "unsupported schema None"),
        (lambda o: o.update(seq="3"), "'seq' must be int"),
        (lambda o: o.update(seq=True), "'seq' must be int"),
        (lambda o: o.update(seq=-4), "non-negative"),
        (lambda o: o.update(ts="2026-11-03T10:15:00+08:00"), "not UTC"),
        (lambda o: o.update(ts="2026-11-03T02:15:00"), "not UTC"),
        (lambda o: o.update(ts="yesterday"), "not an RFC 3339"),
        (lambda o: o.update(ts=1762136100), "must be int|must be str"),
        (lambda o: o.update(quality="meh"), "valid: good, stale, comm_error"),
        (lambda o: o["metrics"][0].update(quality="fine"), r"metrics\[0\].quality: unknown value 'fine'"),
        (lambda o: o["metrics"][1].pop("value"), r"metrics\[1\]: missing field 'value'"),
        (lambda o: o["metrics"][1].update(value=[1]), "must be a number, bool, string or null"),
        (lambda o: o["metrics"][4].update(value=3), "must be null when quality is 'unavailable'"),
        (lambda o: o.update(metrics={}), "'metrics' must be list"),
        (lambda o: o["device"].update({"class": "toaster"}), "valid: ups, genset"),
        (lambda o: o["device"].pop("site"), "missing field 'site'"),
        (lambda o: o["device"]["tags"].update(zone=1), "tags: must be an object of string values"),
        (lambda o: o.update(error=5), "'error' must be a string or null"),
        (lambda o: o.update(duration_s=None), "'duration_s' must be int or float"),
    ],
)
def test_decode_poll_rejects_with_reason(mutate: object, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode_poll(_mutated(mutate))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"", "not UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"schema": "roomguard.readings/1", "seq": NaN}', "not UTF-8 JSON"),
        (b'{"schema": "roomguard.readings/1", "seq": 1e999}', "out of float range"),
        (b"[" * 100_000, "nested too deeply|not UTF-8 JSON"),
        (b'{"seq": ' + b"9" * 5000 + b"}", "not UTF-8 JSON"),
        (encode_status(DeviceStatus("online", TS)), "supported: roomguard.readings/1"),
    ],
)
def test_decode_poll_rejects_garbage(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode_poll(payload)


# --- status and events --------------------------------------------------------------------------------


def test_status_round_trip_and_exact() -> None:
    status = DeviceStatus("offline", TS, "collector connection lost (last will)")
    payload = encode_status(status)
    assert json.loads(payload) == {
        "schema": STATUS_SCHEMA,
        "state": "offline",
        "ts": "2026-11-03T02:15:00.123456Z",
        "reason": "collector connection lost (last will)",
    }
    assert decode_status(payload) == status
    with pytest.raises(WireError, match="valid: online, offline"):
        decode_status(b'{"schema":"roomguard.status/1","state":"up","ts":"2026-11-03T02:15:00Z"}')
    with pytest.raises(WireError, match="missing field 'ts'"):
        decode_status(b'{"schema":"roomguard.status/1","state":"online"}')


def test_event_round_trip_and_rules() -> None:
    trap = WireEvent(
        TS,
        "tpe1",
        "trap",
        "upsTrapOnBattery",
        source="10.0.0.5",
        fields={"seconds_on_battery_s": 12, "alarm": "on_battery", "big": 2**70},
    )
    door = WireEvent(
        TS,
        "tpe1",
        "door",
        "forced_open",
        room="機房A",
        device="door-1",
        fields={"open_since": 1.5, "reason": "無授權開啟"},
    )
    for event in (trap, door):
        assert json.loads(encode_event(event))["schema"] == EVENTS_SCHEMA
        assert decode_event(encode_event(event)) == event
    assert "無授權開啟" in encode_event(door).decode()  # ensure_ascii off: readable zh-TW
    nan = WireEvent(TS, "tpe1", "door", "x", device="d", fields={"v": math.nan})
    assert decode_event(encode_event(nan)).fields == {"v": None}
    with pytest.raises(WireError, match="device or a source"):
        encode_event(WireEvent(TS, "tpe1", "door", "x"))
    bad = json.loads(encode_event(door))
    bad["kind"] = "fire"
    with pytest.raises(WireError, match="valid: trap, door"):
        decode_event(json.dumps(bad).encode())


# --- properties ---------------------------------------------------------------------------------------

_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_metrics = st.builds(Metric, name=st.text(), value=_values, quality=st.sampled_from(Quality))
_zones = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]
_ts = st.datetimes(datetime(1971, 1, 1), datetime(2200, 1, 1), timezones=st.sampled_from(_zones))
_refs = st.builds(
    DeviceRef,
    site=st.text(),
    room=st.text(),
    device=st.text(),
    device_class=st.sampled_from(DeviceClass),
    model=st.text(),
    tags=st.dictionaries(st.text(), st.text(), max_size=5),
)
_polls = st.builds(
    PollResult,
    ref=_refs,
    ts=_ts,
    metrics=st.lists(_metrics, max_size=8).map(tuple),
    duration_s=st.floats(min_value=0, max_value=1e6),
    error=st.none() | st.text(),
    quality=st.sampled_from(Quality),
)


@settings(max_examples=300)
@given(_polls, st.integers(min_value=0, max_value=2**63))
def test_poll_round_trip(result: PollResult, seq: int) -> None:
    decoded, seq2 = decode_poll(encode_poll(result, seq))
    assert seq2 == seq
    _same(decoded, result)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_round_trips_or_becomes_decode_error(x: float) -> None:
    (m,) = decode_poll(encode_poll(_poll(metrics=(Metric("v", x),)), 0))[0].metrics
    if math.isfinite(x):
        assert m == Metric("v", x)
        assert type(m.value) is float
    else:
        assert m == Metric("v", None, Quality.DECODE_ERROR)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=20,
)
_decoders = [decode_poll, decode_status, decode_event]


def _only_wire_error(payload: bytes) -> None:
    for decode in _decoders:
        with contextlib.suppress(WireError):
            decode(payload)


@given(st.binary())
def test_decode_arbitrary_bytes(payload: bytes) -> None:
    _only_wire_error(payload)


@given(_json)
def test_decode_arbitrary_json(obj: object) -> None:
    _only_wire_error(json.dumps(obj).encode())


@given(
    st.sampled_from([READINGS_SCHEMA, STATUS_SCHEMA, EVENTS_SCHEMA]),
    st.dictionaries(
        st.sampled_from(
            [
                "seq",
                "ts",
                "device",
                "quality",
                "metrics",
                "duration_s",
                "error",
                "state",
                "reason",
                "kind",
                "name",
                "site",
                "source",
                "fields",
            ]
        ),
        _json,
    ),
)
def test_decode_json_with_our_schema(schema: str, obj: dict[str, object]) -> None:
    obj["schema"] = schema
    _only_wire_error(json.dumps(obj).encode())


@given(_polls, st.data())
def test_decode_mutated_valid_message(result: PollResult, data: st.DataObject) -> None:
    obj = json.loads(encode_poll(result, 1))
    target = data.draw(st.sampled_from([obj, obj["device"], *obj["metrics"]]))
    key = data.draw(st.sampled_from(sorted(target)))
    if data.draw(st.booleans()):
        del target[key]
    else:
        target[key] = data.draw(_json)
    with contextlib.suppress(WireError):
        decode_poll(json.dumps(obj).encode())
