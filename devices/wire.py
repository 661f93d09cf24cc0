"""MQTT topics and versioned JSON payloads for polls, device status and events (pure, no I/O).

See docs/mqtt.md for the contract this module implements. Every decoder raises only WireError, so a
malformed or foreign message on our topics is rejected with a reason instead of crashing ingest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from devices.reading import DeviceClass, DeviceRef, Metric, PollResult, Quality, Value

READINGS_SCHEMA = "roomguard.readings/1"
STATUS_SCHEMA = "roomguard.status/1"
EVENTS_SCHEMA = "roomguard.events/1"
CONFIRM_SCHEMA = "roomguard.confirm/1"
# Decoders accept exactly these; a new major version is added here next to the old one, never in place.
SUPPORTED_READINGS = (READINGS_SCHEMA,)
SUPPORTED_STATUS = (STATUS_SCHEMA,)
SUPPORTED_EVENTS = (EVENTS_SCHEMA,)
SUPPORTED_CONFIRM = (CONFIRM_SCHEMA,)

DEFAULT_PREFIX = "roomguard/v1"
# Rooms of these names would make collector-status or ingest topics ambiguous with device topics.
COLLECTOR_LEVEL = "_collector"
# Device id prefix of a collector's own health readings (class `system`): `collector-<collector id>`.
COLLECTOR_DEVICE_PREFIX = "collector-"
INGEST_LEVEL = "_ingest"
# The "room" of a site's CC-16000 check results (class compliance, one pseudo-device per check item):
# they belong to the site, not to one room, and the broker ACL lets only compliance write there.
COMPLIANCE_LEVEL = "_compliance"

StatusState = Literal["online", "offline"]
STATUS_STATES: tuple[StatusState, ...] = ("online", "offline")
EventKind = Literal["trap", "door"]
EVENT_KINDS: tuple[EventKind, ...] = ("trap", "door")

_FORBIDDEN_TOPIC_CHARS = ("/", "+", "#", "\0")
_JSON_SEPARATORS = (",", ":")
_T = TypeVar("_T")


class WireError(ValueError):
    """A message (or topic level) that does not follow the roomguard wire contract."""


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """Retained online/offline state of a device or of a collector connection (its last will)."""

    state: StatusState
    ts: datetime
    reason: str | None = None
    # A device's poll quality (good, partial, unavailable, comm_error, …): `online` with `partial` is a
    # device that answers but lacks most of its data. None on collector status messages.
    quality: str | None = None


@dataclass(frozen=True, slots=True)
class WireEvent:
    """A trap or door event on the site's events topic."""

    ts: datetime
    site: str
    kind: EventKind
    name: str
    room: str | None = None
    device: str | None = None
    source: str | None = None
    fields: dict[str, Value] = field(default_factory=dict)


# --- topics -------------------------------------------------------------------------------------------


def check_topic_level(what: str, level: str) -> str:
    """Return level unchanged if it can be one MQTT topic level, else raise WireError naming the problem."""
    if not isinstance(level, str) or not level:
        raise WireError(f"topic level {what!r} must be a non-empty string, got {level!r}")
    for ch in _FORBIDDEN_TOPIC_CHARS:
        if ch in level:
            raise WireError(f"topic level {what}={level!r} contains forbidden character {ch!r}")
    return level


def _prefix(prefix: str) -> str:
    # The prefix may span levels ("roomguard/v1"), so check each of them, not the whole string.
    if not isinstance(prefix, str) or not prefix:
        raise WireError(f"topic prefix must be a non-empty string, got {prefix!r}")
    for level in prefix.split("/"):
        check_topic_level("prefix", level)
    return prefix


def _device_levels(prefix: str, site: str, room: str, device: str) -> str:
    if room in (COLLECTOR_LEVEL, INGEST_LEVEL):
        raise WireError(f"room id {room!r} is reserved for roomguard's own topics")
    return _levels(prefix, site, room, device)


def _levels(prefix: str, site: str, room: str, device: str) -> str:
    return "/".join(
        (
            _prefix(prefix),
            check_topic_level("site", site),
            check_topic_level("room", room),
            check_topic_level("device", device),
        )
    )


def topic_readings(prefix: str, site: str, room: str, device: str) -> str:
    """`{prefix}/{site}/{room}/{device}/readings`: one message per poll."""
    return _device_levels(prefix, site, room, device) + "/readings"


def topic_compliance(prefix: str, site: str, item: str) -> str:
    """`{prefix}/{site}/_compliance/{item}/readings`: one CC-16000 check's result (class compliance)."""
    return _levels(prefix, site, COMPLIANCE_LEVEL, item) + "/readings"


def topic_status(prefix: str, site: str, room: str, device: str) -> str:
    """`{prefix}/{site}/{room}/{device}/status`: retained device online/offline."""
    return _device_levels(prefix, site, room, device) + "/status"


def topic_collector_status(prefix: str, site: str, collector_id: str) -> str:
    """`{prefix}/{site}/_collector/{collector_id}/status`: retained collector state, its last will."""
    return "/".join(
        (
            _prefix(prefix),
            check_topic_level("site", site),
            COLLECTOR_LEVEL,
            check_topic_level("collector_id", collector_id),
            "status",
        )
    )


def topic_confirm(prefix: str, site: str, ingest_id: str) -> str:
    """`{prefix}/{site}/_ingest/{ingest_id}/confirmed`: what an ingest process has stored (not retained)."""
    return "/".join(
        (
            _prefix(prefix),
            check_topic_level("site", site),
            INGEST_LEVEL,
            check_topic_level("ingest_id", ingest_id),
            "confirmed",
        )
    )


def topic_confirm_filter(prefix: str, site: str) -> str:
    """The subscription a collector of `site` uses to hear every ingest process's confirmations."""
    return "/".join((_prefix(prefix), check_topic_level("site", site), INGEST_LEVEL, "+", "confirmed"))


def topic_events(prefix: str, site: str) -> str:
    """`{prefix}/{site}/events`: trap and door events."""
    return f"{_prefix(prefix)}/{check_topic_level('site', site)}/events"


def topic_alert(prefix: str, site: str, alert_id: str) -> str:
    """`{prefix}/{site}/alerts/{alert_id}`: retained current state of one alert."""
    alert = check_topic_level("alert_id", alert_id)
    return f"{_prefix(prefix)}/{check_topic_level('site', site)}/alerts/{alert}"


# --- shared encode / decode helpers -------------------------------------------------------------------


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with microseconds and a `Z` suffix; a naive datetime is refused."""
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise WireError(f"ts must be a timezone-aware datetime, got {ts!r}")
    try:
        utc = ts.astimezone(UTC)
    except OverflowError as exc:
        raise WireError(f"ts {ts!r} cannot be expressed in UTC") from exc
    # isoformat, not strftime: strftime does not zero-pad years < 1000 on glibc.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(what: str, text: object) -> datetime:
    """Parse an RFC 3339 timestamp that must be UTC (`Z` or `+00:00`) into an aware UTC datetime."""
    if not isinstance(text, str):
        raise WireError(f"{what} must be an RFC 3339 string, got {type(text).__name__}")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WireError(f"{what} {text!r} is not an RFC 3339 timestamp") from exc
    if ts.tzinfo is None or ts.utcoffset() != timedelta(0):
        raise WireError(f"{what} {text!r} is not UTC (expected a 'Z' suffix)")
    return ts.replace(tzinfo=UTC)


def _dumps(obj: dict[str, Any]) -> bytes:
    try:
        # allow_nan=False: NaN/Infinity are not JSON; callers have already mapped them away.
        return json.dumps(obj, separators=_JSON_SEPARATORS, ensure_ascii=False, allow_nan=False).encode()
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError (lone surrogates) is a ValueError
        raise WireError(f"cannot encode message: {exc}") from exc


def _finite(what: str, number: float) -> float:
    """`number` as a finite float; an integer too large for a float (1 followed by 400 zeros) is refused."""
    try:
        value = float(number)
    except OverflowError:
        raise WireError(f"{what} is out of float range") from None
    if not math.isfinite(value):
        raise WireError(f"{what} must be finite")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "1e999" parses to inf; we never send it, so it is foreign
        raise ValueError(f"number {text} is out of float range")
    return value


def _loads(payload: bytes, schemas: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise WireError(f"payload must be bytes, got {type(payload).__name__}")
    try:
        text = bytes(payload).decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as exc:  # deeply nested arrays blow the json module's stack
        raise WireError("payload is nested too deeply") from exc
    except ValueError as exc:  # also UnicodeDecodeError, JSONDecodeError and int digit limits
        raise WireError(f"payload is not UTF-8 JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise WireError(f"payload must be a JSON object, got {type(obj).__name__}")
    schema = obj.get("schema")
    if schema not in schemas:
        raise WireError(f"unsupported schema {schema!r}; supported: {', '.join(schemas)}")
    return obj


def _get(obj: Mapping[str, Any], key: str, kind: type[_T] | tuple[type, ...], where: str) -> _T:
    if key not in obj:
        raise WireError(f"{where}: missing field {key!r}")
    value = obj[key]
    # bool is an int subclass; a JSON true must never pass for a number or a sequence number.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise WireError(f"{where}: field {key!r} must be {names}, got {type(value).__name__}")
    return cast(_T, value)


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise WireError(f"{where}: field {key!r} must be a string or null, got {type(value).__name__}")
    return value


def _choice(enum: Callable[[str], _T], value: object, choices: tuple[str, ...], where: str) -> _T:
    if isinstance(value, str) and value in choices:
        return enum(value)
    raise WireError(f"{where}: unknown value {value!r}; valid: {', '.join(choices)}")


def _scalar(value: object, where: str) -> Value:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise WireError(f"{where}: value must be a number, bool, string or null, got {type(value).__name__}")


def _str_dict(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise WireError(f"{where}: must be an object of string values")
    return value


_QUALITIES = tuple(q.value for q in Quality)
_CLASSES = tuple(c.value for c in DeviceClass)


# --- readings -----------------------------------------------------------------------------------------


def _metric_json(m: Metric) -> dict[str, Any]:
    value, quality = m.value, m.quality
    # NaN/inf are not JSON and not a measurement: they travel as a decode_error gap (docs/mqtt.md).
    if isinstance(value, float) and not math.isfinite(value):
        value, quality = None, Quality.DECODE_ERROR
    return {"name": m.name, "value": value if quality is Quality.GOOD else None, "quality": quality.value}


def encode_poll(result: PollResult, seq: int, epoch: str | None = None) -> bytes:
    """Encode one device poll as a `roomguard.readings/1` message with its per-device sequence number.

    `epoch` names the sequence (it changes when a collector starts numbering from 0 again, with a new
    state directory), so that a lower seq is told apart from a restart without guessing.
    """
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise WireError(f"seq must be a non-negative int, got {seq!r}")
    duration = float(result.duration_s)
    if not math.isfinite(duration):
        raise WireError(f"duration_s must be finite, got {duration!r}")
    ref = result.ref
    return _dumps(
        {
            "schema": READINGS_SCHEMA,
            "seq": seq,
            **({"epoch": epoch} if epoch is not None else {}),
            "ts": format_ts(result.ts),
            "device": {
                "site": ref.site,
                "room": ref.room,
                "device": ref.device,
                "class": ref.device_class.value,
                "model": ref.model,
                "tags": ref.tags,
            },
            "quality": result.quality.value,
            "error": result.error,
            "duration_s": duration,
            "metrics": [_metric_json(m) for m in result.metrics],
        }
    )


def _decode_metric(raw: object, i: int) -> Metric:
    where = f"metrics[{i}]"
    if not isinstance(raw, dict):
        raise WireError(f"{where}: must be an object, got {type(raw).__name__}")
    name = _get(raw, "name", str, where)
    quality = _choice(Quality, _get(raw, "quality", str, where), _QUALITIES, f"{where}.quality")
    if "value" not in raw:
        raise WireError(f"{where}: missing field 'value'")
    value = _scalar(raw["value"], f"{where}.value")
    if quality is not Quality.GOOD and value is not None:
        raise WireError(f"{where}: value must be null when quality is {quality.value!r}")
    return Metric(name, value, quality)


def decode_poll(payload: bytes) -> tuple[PollResult, int]:
    """Decode a `roomguard.readings/1` message into (PollResult, seq); raises WireError only."""
    result, seq, _epoch = decode_poll_epoch(payload)
    return result, seq


def decode_poll_epoch(payload: bytes) -> tuple[PollResult, int, str | None]:
    """Decode a `roomguard.readings/1` message into (PollResult, seq, epoch); raises WireError only."""
    obj = _loads(payload, SUPPORTED_READINGS)
    seq = _get(obj, "seq", int, "readings")
    if seq < 0:
        raise WireError(f"readings: seq must be non-negative, got {seq}")
    ts = parse_ts("readings: ts", _get(obj, "ts", str, "readings"))
    dev = _get(obj, "device", dict, "readings")
    where = "readings.device"
    ref = DeviceRef(
        site=_get(dev, "site", str, where),
        room=_get(dev, "room", str, where),
        device=_get(dev, "device", str, where),
        device_class=_choice(DeviceClass, dev.get("class"), _CLASSES, f"{where}.class"),
        model=_get(dev, "model", str, where),
        tags=_str_dict(dev.get("tags", {}), f"{where}.tags"),
    )
    quality = _choice(Quality, obj.get("quality"), _QUALITIES, "readings.quality")
    duration = _finite("readings: duration_s", _get(obj, "duration_s", (int, float), "readings"))
    raw_metrics = _get(obj, "metrics", list, "readings")
    metrics = tuple(_decode_metric(m, i) for i, m in enumerate(raw_metrics))
    result = PollResult(
        ref=ref,
        ts=ts,
        metrics=metrics,
        duration_s=duration,
        error=_opt_str(obj, "error", "readings"),
        quality=quality,
    )
    return result, seq, _opt_str(obj, "epoch", "readings")


# --- status -------------------------------------------------------------------------------------------


def encode_status(status: DeviceStatus) -> bytes:
    """Encode a retained `roomguard.status/1` message (also used as the collector's last will)."""
    if status.state not in STATUS_STATES:
        raise WireError(f"status state {status.state!r}; valid: {', '.join(STATUS_STATES)}")
    body: dict[str, Any] = {
        "schema": STATUS_SCHEMA,
        "state": status.state,
        "ts": format_ts(status.ts),
        "reason": status.reason,
    }
    if status.quality is not None:
        body["quality"] = status.quality
    return _dumps(body)


def decode_status(payload: bytes) -> DeviceStatus:
    """Decode a `roomguard.status/1` message; raises WireError only."""
    obj = _loads(payload, SUPPORTED_STATUS)
    state = obj.get("state")
    if state not in STATUS_STATES:
        raise WireError(f"status: unknown state {state!r}; valid: {', '.join(STATUS_STATES)}")
    ts = parse_ts("status: ts", _get(obj, "ts", str, "status"))
    return DeviceStatus(
        state=cast(StatusState, state),
        ts=ts,
        reason=_opt_str(obj, "reason", "status"),
        quality=_opt_str(obj, "quality", "status"),
    )


# --- events -------------------------------------------------------------------------------------------


def _event_field(value: Value) -> Value:
    # Same rule as readings: a non-finite float is not a value, it becomes null.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def encode_event(event: WireEvent) -> bytes:
    """Encode a `roomguard.events/1` message (a trap or a door event)."""
    if event.kind not in EVENT_KINDS:
        raise WireError(f"event kind {event.kind!r}; valid: {', '.join(EVENT_KINDS)}")
    if event.device is None and event.source is None:
        raise WireError("event needs a device or a source")
    return _dumps(
        {
            "schema": EVENTS_SCHEMA,
            "ts": format_ts(event.ts),
            "site": event.site,
            "room": event.room,
            "device": event.device,
            "source": event.source,
            "kind": event.kind,
            "name": event.name,
            "fields": {k: _event_field(v) for k, v in event.fields.items()},
        }
    )


def decode_event(payload: bytes) -> WireEvent:
    """Decode a `roomguard.events/1` message; raises WireError only."""
    obj = _loads(payload, SUPPORTED_EVENTS)
    kind = obj.get("kind")
    if kind not in EVENT_KINDS:
        raise WireError(f"events: unknown kind {kind!r}; valid: {', '.join(EVENT_KINDS)}")
    device, source = _opt_str(obj, "device", "events"), _opt_str(obj, "source", "events")
    if device is None and source is None:
        raise WireError("events: needs 'device' or 'source'")
    raw_fields = _get(obj, "fields", dict, "events")
    fields = {k: _scalar(v, f"events.fields[{k!r}]") for k, v in raw_fields.items()}
    return WireEvent(
        ts=parse_ts("events: ts", _get(obj, "ts", str, "events")),
        site=_get(obj, "site", str, "events"),
        kind=cast(EventKind, kind),
        name=_get(obj, "name", str, "events"),
        room=_opt_str(obj, "room", "events"),
        device=device,
        source=source,
        fields=fields,
    )


# --- delivery confirmations ---------------------------------------------------------------------------

SeqRanges = dict[str, list[tuple[int, int]]]


def seq_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges covering `seqs` ([1, 2, 3, 7] → [(1, 3), (7, 7)])."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def encode_confirm(ts: datetime, site: str, streams: SeqRanges) -> bytes:
    """Encode a `roomguard.confirm/1` message: per stream (`room/device`), the seq ranges stored."""
    return _dumps(
        {
            "schema": CONFIRM_SCHEMA,
            "ts": format_ts(ts),
            "site": site,
            "streams": {k: [list(r) for r in v] for k, v in streams.items()},
        }
    )


def decode_confirm(payload: bytes) -> tuple[str, SeqRanges]:
    """Decode a `roomguard.confirm/1` message into (site, streams); raises WireError only."""
    obj = _loads(payload, SUPPORTED_CONFIRM)
    site = _get(obj, "site", str, "confirm")
    raw = _get(obj, "streams", dict, "confirm")
    streams: SeqRanges = {}
    for key, ranges in raw.items():
        where = f"confirm.streams[{key!r}]"
        if not isinstance(ranges, list):
            raise WireError(f"{where}: must be a list of [first, last] pairs")
        out: list[tuple[int, int]] = []
        for pair in ranges:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in pair)
                or pair[0] > pair[1]
            ):
                raise WireError(f"{where}: {pair!r} is not a [first, last] pair of sequence numbers")
            out.append((pair[0], pair[1]))
        streams[key] = out
    return site, streams
