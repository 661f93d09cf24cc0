"""What ingest accepts from the bus (ingest/admit.py): limits, and no message can make it raise."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.reading import DeviceClass, DeviceRef, Metric, PollResult
from devices.wire import encode_poll
from ingest.admit import Accepted, AdmissionRules, Rejected, admit
from ingest.lineproto import LineEncoder

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TOPIC = "roomguard/v1/s1/r1/th-1/readings"
RULES = AdmissionRules()


def _payload(ts: datetime = NOW, metrics: int = 2, seq: int = 7, device: str = "th-1") -> bytes:
    ref = DeviceRef("s1", "r1", device, DeviceClass.ENV, "sht20-xy-md02", {"rack": "a01"})
    values = tuple(Metric(f"m{i}", float(i)) for i in range(metrics))
    return encode_poll(PollResult(ref, ts, values, duration_s=0.01), seq)


def _admit(payload: bytes, rules: AdmissionRules = RULES, topic: str = TOPIC) -> Accepted | Rejected:
    return admit(topic, payload, rules, LineEncoder(), NOW)


def test_a_good_reading_becomes_one_line_with_its_device_and_seq() -> None:
    got = _admit(_payload())
    assert isinstance(got, Accepted)
    assert got.key == ("s1", "r1", "th-1")
    assert got.seq == 7
    assert got.line.startswith("env,device=th-1,model=sht20-xy-md02,rack=a01,room=r1,site=s1 m0=0.0,m1=1.0")


def test_a_number_too_big_for_a_float_is_refused_not_raised() -> None:
    # The 773-byte message that stopped ingest for good: OverflowError in float() on every redelivery.
    doc = json.loads(_payload())
    text = json.dumps(doc).replace('"duration_s": 0.01', '"duration_s": 1' + "0" * 400)
    got = _admit(text.encode())
    assert isinstance(got, Rejected)
    assert "duration_s" in got.reason
    assert "out of float range" in got.reason


def test_size_metric_count_time_window_and_unknown_devices_are_refused_with_the_limit_named() -> None:
    huge = b'{"x":"' + b"a" * (11 * 1024 * 1024) + b'"}'
    got = _admit(huge)
    assert isinstance(got, Rejected)
    assert "ingest.max_payload_bytes" in got.reason

    many = _admit(_payload(metrics=200), AdmissionRules(max_metrics=100))
    assert isinstance(many, Rejected)
    assert "200 metrics" in many.reason
    assert many.key == ("s1", "r1", "th-1")  # decoded: confirmed to the collector though not written
    assert many.seq == 7

    future = _admit(_payload(ts=datetime(2200, 1, 1, tzinfo=UTC)))
    assert isinstance(future, Rejected)
    assert "ingest.max_future_s" in future.reason
    assert isinstance(_admit(_payload(ts=NOW + timedelta(seconds=200))), Accepted)

    old = _admit(_payload(ts=NOW - timedelta(days=8)))
    assert isinstance(old, Rejected)
    assert "ingest.max_past_s" in old.reason

    known = AdmissionRules(known={("s1", "th-1"): "r1", ("s1", "th-2"): "r2"})
    assert isinstance(_admit(_payload(), known), Accepted)
    intruder = _admit(_payload(device="intruder"), known, topic="roomguard/v1/s1/r1/intruder/readings")
    assert isinstance(intruder, Rejected)
    assert "not in the site file" in intruder.reason
    moved = _admit(_payload(device="th-2"), known, topic="roomguard/v1/s1/r1/th-2/readings")
    assert isinstance(moved, Rejected)
    assert "configured in room r2" in moved.reason


def test_control_characters_and_huge_names_are_refused() -> None:
    doc = json.loads(_payload())
    doc["metrics"][0]["name"] = "temp\x1fc"
    got = _admit(json.dumps(doc).encode())
    assert isinstance(got, Rejected)
    assert "control characters" in got.reason
    doc = json.loads(_payload())
    doc["device"]["tags"] = {"rack": "a" * 300}
    got = _admit(json.dumps(doc).encode())
    assert isinstance(got, Rejected)
    assert "300 characters" in got.reason


def test_a_payload_for_another_topic_is_refused() -> None:
    got = _admit(_payload(), topic="roomguard/v1/s1/r1/th-9/readings")
    assert isinstance(got, Rejected)
    assert "does not match topic" in got.reason


# --- fuzzing the whole path: bytes → decode → checks → line protocol ----------------------------------

_LINE = re.compile(r"^[^ ,]+(,[^ ]+)* \S.* -?\d+$")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = ["schema", "seq", "ts", "device", "quality", "error", "duration_s", "metrics"]


def _check(got: Accepted | Rejected) -> None:
    if isinstance(got, Accepted):
        # One line without control characters: one in a key would make the database refuse the whole
        # batch (every good point with it), so such messages are refused; in a string value it is a space.
        assert not any(ord(c) < 32 or ord(c) == 127 for c in got.line), got.line
        assert _LINE.match(got.line), got.line
    else:
        assert got.reason


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(_FIELDS), value=json_values)
def test_any_field_replaced_by_any_json_never_raises(field: str, value: Any) -> None:
    doc = json.loads(_payload())
    doc[field] = value
    _check(_admit(json.dumps(doc).encode()))


@settings(max_examples=300, deadline=None)
@given(part=st.sampled_from(["site", "room", "device", "class", "model", "tags"]), value=json_values)
def test_any_device_field_replaced_never_raises(part: str, value: Any) -> None:
    doc = json.loads(_payload())
    doc["device"][part] = value
    _check(_admit(json.dumps(doc).encode()))


@settings(max_examples=300, deadline=None)
@given(
    metrics=st.lists(
        st.fixed_dictionaries(
            {
                "name": st.text(max_size=30),
                "value": json_values,
                "quality": st.sampled_from(["good", "unavailable", "x"]),
            }
        ),
        max_size=8,
    )
)
def test_any_metrics_never_raise(metrics: list[dict[str, Any]]) -> None:
    doc = json.loads(_payload())
    doc["metrics"] = metrics
    _check(_admit(json.dumps(doc).encode()))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), cut=st.integers(0, 600))
def test_any_bytes_or_truncation_never_raise(data: bytes, cut: int) -> None:
    _check(_admit(data))
    _check(_admit(_payload()[:cut] + data))


@settings(max_examples=200, deadline=None)
@given(digits=st.integers(300, 5000), where=st.sampled_from(["seq", "duration_s", "value"]))
def test_huge_numbers_anywhere_never_raise(digits: int, where: str) -> None:
    text = _payload().decode()
    big = "1" + "0" * digits
    if where == "value":
        text = text.replace('"value":0.0', f'"value":{big}')
    else:
        text = re.sub(rf'"{where}":[0-9.]+', f'"{where}":{big}', text)
    _check(_admit(text.encode()))


def test_known_devices_only_still_accepts_the_collectors_own_health_readings() -> None:
    # The soak of the example site (known_devices_only: true) dead-lettered every collector self-reading:
    # its device id is `collector-<host name>`, which no site file lists.
    rules = AdmissionRules(known={("s1", "th-1"): "r1"}, system_rooms=frozenset({("s1", "r1")}))

    def health(room: str, device: str, device_class: DeviceClass = DeviceClass.SYSTEM) -> bytes:
        ref = DeviceRef("s1", room, device, device_class, "roomguard")
        return encode_poll(PollResult(ref, NOW, (Metric("outbox_depth", 0),)), 1)

    own = _admit(
        health("r1", "collector-edge-1"), rules, topic="roomguard/v1/s1/r1/collector-edge-1/readings"
    )
    assert isinstance(own, Accepted)
    elsewhere = _admit(
        health("r9", "collector-edge-1"), rules, topic="roomguard/v1/s1/r9/collector-edge-1/readings"
    )
    assert isinstance(elsewhere, Rejected)
    assert "not a room of the site" in elsewhere.reason
    # Only the collector's system readings: an unknown sensor named like one is still refused.
    fake = _admit(
        health("r1", "collector-x", DeviceClass.ENV), rules, topic="roomguard/v1/s1/r1/collector-x/readings"
    )
    assert isinstance(fake, Rejected)
    assert "not in the site file" in fake.reason
