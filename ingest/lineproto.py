"""InfluxDB line protocol for one PollResult, encoded directly (the hot path of ingest; no Point objects).

Schema and typing rules: docs/influx-schema.md. In short: measurement = device class; tags = site, room,
device, model plus the device's own tags (zone, rack, ...) sorted; every number is a float field (so a
field never changes type between int and float, which InfluxDB rejects); a metric without a good value
becomes `<metric>_quality="<quality>"`; `quality` summarises the poll, `poll_duration_s` is how long it
took; timestamp in nanoseconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from devices.reading import DeviceRef, PollResult, Quality

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Fixed tags win over a device tag of the same name: they identify the series.
FIXED_TAGS = ("site", "room", "device", "model")
QUALITY_FIELD = "quality"
ERROR_FIELD = "error"
# How long the poll took (the readings message's `duration_s`): edge health charts slow devices with it.
DURATION_FIELD = "poll_duration_s"
QUALITY_SUFFIX = "_quality"

# Backslashes and line breaks are not portable across the InfluxDB 1.x, 2.x and VictoriaMetrics parsers in
# identifiers (1.x does not unescape "\\" in tags; a trailing "\" escapes the separator), so identifiers
# get "/" and spaces instead; ids with those characters are not plausible anyway.
# (str.translate is one pass, so a line break maps straight to an escaped space.)
_BLANKS = {"\\": "/", "\n": "\\ ", "\r": "\\ ", "\t": "\\ ", ",": "\\,", " ": "\\ "}
_MEASUREMENT = str.maketrans(_BLANKS)
_KEY = str.maketrans({**_BLANKS, "=": "\\="})
# String field values: backslash and quote are escaped (all parsers agree); line breaks and every other
# control character become spaces, because a raw newline inside a quoted value is not accepted everywhere
# and a control character from a device's string would only corrupt what a dashboard shows.
_STRING = str.maketrans({**{chr(c): " " for c in (*range(32), 127)}, "\\": "\\\\", '"': '\\"'})


def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas and spaces)."""
    return name.translate(_MEASUREMENT)


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key (commas, spaces, equals signs)."""
    return text.translate(_KEY)


def quote_string(text: str) -> str:
    """A double-quoted string field value with backslashes and quotes escaped."""
    return '"' + text.translate(_STRING) + '"'


def timestamp_ns(ts: datetime) -> int:
    """Exact integer nanoseconds since the epoch of an aware datetime (microsecond precision)."""
    if ts.tzinfo is None:
        raise ValueError(f"poll timestamp must be timezone-aware UTC, got naive {ts!r}")
    # timedelta // timedelta is exact integer arithmetic; float timestamps would lose nanoseconds.
    return (ts - _EPOCH) // _MICROSECOND * 1000


def format_number(value: int | float) -> str | None:
    """Line-protocol text of a number as a float field, or None if it cannot be one (NaN, inf, huge int)."""
    try:
        f = float(value)
    except OverflowError:
        return None
    return repr(f) if math.isfinite(f) else None


def series_key(ref: DeviceRef) -> str:
    """`measurement,tag=value,...` for a device: the part of every line that never changes between polls."""
    tags = {k: v for k, v in ref.tags.items() if k not in FIXED_TAGS}
    tags.update(site=ref.site, room=ref.room, device=ref.device, model=ref.model)
    parts = [escape_measurement(ref.device_class.value)]
    for key in sorted(tags):
        value = tags[key]
        if key and value:  # InfluxDB rejects empty tag keys and values; an empty tag is no tag
            parts.append(f"{escape_key(key)}={escape_key(value)}")
    return ",".join(parts)


class LineEncoder:
    """Encodes PollResults as line protocol, caching each device's series key (bounded)."""

    def __init__(self, max_devices: int = 10_000) -> None:
        self._max = max_devices
        self._series: dict[tuple[object, ...], str] = {}
        self._field_keys: dict[str, str] = {}

    def _series_key(self, ref: DeviceRef) -> str:
        # Keyed by content, not identity: ingest decodes a fresh DeviceRef from every MQTT message.
        key = (ref.device_class, ref.site, ref.room, ref.device, ref.model, *ref.tags.items())
        cached = self._series.get(key)
        if cached is None:
            if len(self._series) >= self._max:
                self._series.clear()  # a renamed fleet must not grow memory without bound
            cached = self._series[key] = series_key(ref)
        return cached

    def _field_key(self, name: str) -> str:
        cached = self._field_keys.get(name)
        if cached is None:
            if len(self._field_keys) >= self._max:
                self._field_keys.clear()
            cached = self._field_keys[name] = escape_key(name)
        return cached

    def encode(self, result: PollResult) -> str:
        """One line (no trailing newline) for one poll; always at least the `quality` field."""
        fields: dict[str, str] = {}
        bad: dict[str, str] = {}
        first_bad: Quality | None = None
        for m in result.metrics:
            if not m.name:
                continue
            value, quality = m.value, m.quality
            text: str | None = None
            if quality is Quality.GOOD:
                if value is None:
                    quality = Quality.UNAVAILABLE  # a good-but-empty value is a gap, say so
                elif value is True or value is False:
                    text = "true" if value else "false"
                elif isinstance(value, str):
                    text = quote_string(value)
                else:
                    text = format_number(value)
                    if text is None:
                        quality = Quality.DECODE_ERROR  # NaN/inf/out of range: same rule as the wire
            if text is not None:
                fields[self._field_key(m.name)] = text
            else:
                bad[self._field_key(m.name + QUALITY_SUFFIX)] = quote_string(quality.value)
                if first_bad is None:
                    first_bad = quality
        summary = result.quality
        if summary is Quality.GOOD and not fields and first_bad is not None:
            summary = first_bad  # nothing usable although the poll "worked": say why, not "good"
        # Our own fields are written last so they win over a metric that happens to share the name.
        fields.update(bad)
        fields[QUALITY_FIELD] = quote_string(summary.value)
        if result.error is not None:
            fields[ERROR_FIELD] = quote_string(result.error)
        duration = format_number(result.duration_s)
        if duration is not None:
            fields[DURATION_FIELD] = duration
        field_text = ",".join(f"{k}={v}" for k, v in fields.items())
        return f"{self._series_key(result.ref)} {field_text} {timestamp_ns(result.ts)}"

    def encode_many(self, results: list[PollResult]) -> str:
        """Newline-joined lines for a batch (with a trailing newline, as the write APIs accept)."""
        return "".join(self.encode(r) + "\n" for r in results)


_DEFAULT = LineEncoder()


def poll_to_line(result: PollResult) -> str:
    """Encode one poll with a module-wide LineEncoder (convenience for callers without their own)."""
    return _DEFAULT.encode(result)
