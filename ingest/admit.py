"""What ingest accepts from the bus: one message in, a line of line protocol or a reason out (pure).

Anything on the readings topics may be hostile or broken: a foreign schema, a 10 MB message, 200,000
metrics, a reading dated 2200, a device no collector of this site has, or a number with 400 digits that
makes float() raise OverflowError. `admit` never raises: every failure, expected or not, becomes a
`Rejected` with its reason, which ingest dead-letters and acknowledges, so one bad message can never stop
ingest (before, it was redelivered and killed ingest on every restart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from devices.reading import DeviceClass, DeviceRef
from devices.wire import COLLECTOR_DEVICE_PREFIX, COMPLIANCE_LEVEL, decode_poll_epoch
from ingest.lineproto import LineEncoder

Key = tuple[str, str, str]  # (site, room, device)
# Longest site, room, device, model, tag or metric name written (InfluxDB's own limit is 64 KB per key).
MAX_IDENTIFIER = 256


@dataclass(frozen=True, slots=True)
class AdmissionRules:
    """Limits on what is written; `known` maps (site, device) to its room when only those are accepted.

    With `known`, a collector's own health readings (class `system`, device `collector-<id>`: the id is
    the host name unless set, so no site file lists it) are accepted in the rooms of `system_rooms`, and
    the site's CC-16000 check results (class `compliance`, room `_compliance`) for the sites there."""

    max_payload_bytes: int = 256 * 1024
    max_metrics: int = 1000
    max_past_s: float = 7 * 86_400.0
    max_future_s: float = 300.0
    known: Mapping[tuple[str, str], str] | None = field(default=None)
    system_rooms: frozenset[tuple[str, str]] = frozenset()  # (site, room)

    def knows(self, ref: DeviceRef) -> str | None:
        """None if the device may be written, else why not."""
        if self.known is None:
            return None
        if ref.device_class is DeviceClass.SYSTEM and ref.device.startswith(COLLECTOR_DEVICE_PREFIX):
            if (ref.site, ref.room) in self.system_rooms:
                return None
            return f"collector {ref.site}/{ref.device} reports from room {ref.room}, not a room of the site"
        if ref.device_class is DeviceClass.COMPLIANCE and ref.room == COMPLIANCE_LEVEL:
            # CC-16000 check results (one pseudo-device per check item) of a site this ingest serves.
            if any(site == ref.site for site, _ in self.system_rooms):
                return None
            return f"compliance results of site {ref.site}, not a site of this ingest"
        room = self.known.get((ref.site, ref.device))
        if room == ref.room:
            return None
        return "not in the site file" if room is None else f"configured in room {room}, not {ref.room}"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A reading to write: its device, sequence number (and its epoch, if the collector sent one), line."""

    key: Key
    seq: int
    line: str
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message not written, and why; `key`/`seq` are set when it decoded (it is confirmed anyway)."""

    reason: str
    key: Key | None = None
    seq: int | None = None


def admit(
    topic: str, payload: bytes, rules: AdmissionRules, encoder: LineEncoder, now: datetime
) -> Accepted | Rejected:
    """Decode, check and encode one readings message; never raises."""
    try:
        return _admit(topic, payload, rules, encoder, now)
    except Exception as exc:  # the contract: no message may crash ingest, whatever it holds
        return Rejected(f"{type(exc).__name__}: {exc}"[:500])


def _admit(
    topic: str, payload: bytes, rules: AdmissionRules, encoder: LineEncoder, now: datetime
) -> Accepted | Rejected:
    if len(payload) > rules.max_payload_bytes:
        return Rejected(
            f"message of {len(payload)} bytes is over the limit of {rules.max_payload_bytes} "
            "(ingest.max_payload_bytes)"
        )
    poll, seq, epoch = decode_poll_epoch(payload)
    ref = poll.ref
    key = (ref.site, ref.room, ref.device)
    if topic.split("/")[-4:-1] != list(key):
        return Rejected(f"payload device {'/'.join(key)} does not match topic {topic}")
    if len(poll.metrics) > rules.max_metrics:
        return Rejected(
            f"{len(poll.metrics)} metrics in one message, over the limit of {rules.max_metrics} "
            "(ingest.max_metrics)",
            key,
            seq,
        )
    bad = _bad_identifier(
        [
            ("site", ref.site),
            ("room", ref.room),
            ("device", ref.device),
            ("model", ref.model),
            *(("tag", t) for kv in ref.tags.items() for t in kv),
            *(("metric", m.name) for m in poll.metrics),
        ]
    )
    if bad:
        # One such line would make the database refuse the whole batch, good points and all.
        return Rejected(bad, key, seq)
    unknown = rules.knows(ref)
    if unknown is not None:
        return Rejected(f"device {ref.site}/{ref.device}: {unknown} (ingest.known_devices_only)", key, seq)
    if poll.ts < now - timedelta(seconds=rules.max_past_s):
        return Rejected(
            f"poll time {poll.ts.isoformat()} is older than {rules.max_past_s:g} s (ingest.max_past_s)",
            key,
            seq,
        )
    if poll.ts > now + timedelta(seconds=rules.max_future_s):
        return Rejected(
            f"poll time {poll.ts.isoformat()} is more than {rules.max_future_s:g} s in the "
            "future (ingest.max_future_s; is the collector's clock right?)",
            key,
            seq,
        )
    return Accepted(key, seq, encoder.encode(poll), epoch)


def _bad_identifier(names: list[tuple[str, str]]) -> str | None:
    """Why one of these identifiers cannot become a series key or field name, or None."""
    for what, name in names:
        if len(name) > MAX_IDENTIFIER:
            return f"{what} name of {len(name)} characters (at most {MAX_IDENTIFIER})"
        if not name.isprintable():
            return f"{what} name {name[:60]!r} holds control characters"
    return None


__all__ = ["Accepted", "AdmissionRules", "Rejected", "admit"]
