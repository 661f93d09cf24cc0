"""Incident reviews from alerts (CC-20000 (五)): a critical alert of a reviewed class opens one.

Pure: the caller hands in the bytes of a `roomguard.alert/1` payload (retained alert topic or webhook,
docs/mqtt.md "Alerts") and the review it already keeps for that alert; out comes the review to store.

* Only severity `critical` with labels.class in `compliance.incidents.classes` opens a review.
* incident_id = "{alert id}@{started_at in UTC, whole seconds}": one review per firing of an alert.
* Opening: summary 'zh text / en text', due_at = started_at + review_days, the timeline starts with
  "fired at …", then the caller's context lines (readings around the event), then any acknowledgement
  and resolution the payload already carries.
* Updates add a timeline line per new event (acknowledged, resolved) and fill resolved_at if empty;
  a redelivered payload changes nothing. What people fill in (summary, cause, actions, owner, due date,
  closed_*) is never overwritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from compliance.facts import AlertInfo
from compliance.kinds import Incident, utc_key
from siteconfig.compliance_config import Incidents

SCHEMA = "roomguard.alert/1"
# An event line's time: "… at 2026-11-03T10:15:00+08:00 / …" (the dedup key with the event word).
_EVENT_LINE = re.compile(r"^(fired|acknowledged|resolved)\b.*? at (\d{4}-\d\d-\d\dT\S+) /")


@dataclass(frozen=True, slots=True)
class AlertPayload:
    """The parts of a roomguard.alert/1 payload that reviews and the board use."""

    id: str
    rule: str
    severity: str
    state: str
    started_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    resolved_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    acked_note: str | None = None
    text_zh: str = ""
    text_en: str = ""
    notice_kind: str | None = None  # firing | escalation | acknowledged | resolved; None if absent

    @property
    def device_class(self) -> str | None:
        """labels.class: ups, genset, crac, ..."""
        return self.labels.get("class")

    @classmethod
    def parse(cls, data: bytes | str) -> AlertPayload | None:
        """Decode a payload; None for an empty one (the alert was cleared), ValueError if it is not one."""
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"alert payload is not UTF-8 (byte {e.start})") from None
        if not data.strip():
            return None
        try:
            obj = json.loads(data)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"alert payload is not JSON: {e.msg} at line {e.lineno} column {e.colno}"
            ) from None
        if not isinstance(obj, dict):
            raise ValueError(f"alert payload is a JSON {type(obj).__name__}, not an object")
        if obj.get("schema") != SCHEMA:
            raise ValueError(f"alert payload schema {obj.get('schema')!r} is not {SCHEMA!r}")
        labels = obj.get("labels") or {}
        if not isinstance(labels, dict):
            raise ValueError("alert payload field 'labels' is not an object")
        acked = obj.get("acked") or {}
        texts = obj.get("texts") or {}
        notice = obj.get("notice") or {}
        started_at = _time(obj, "started_at")
        if started_at is None:
            raise ValueError("alert payload field 'started_at' is missing")
        if not isinstance(acked, dict) or not isinstance(texts, dict) or not isinstance(notice, dict):
            raise ValueError("alert payload fields 'acked', 'texts' and 'notice' must be objects or null")
        return cls(
            id=_required(obj, "id"),
            rule=_required(obj, "rule"),
            severity=_required(obj, "severity"),
            state=_required(obj, "state"),
            started_at=started_at,
            labels={str(k): v for k, v in labels.items() if isinstance(v, str)},
            resolved_at=_time(obj, "resolved_at"),
            acked_by=_opt_str(acked.get("by")),
            acked_at=_time(acked, "at", where="acked."),
            acked_note=_opt_str(acked.get("note")),
            text_zh=_opt_str(texts.get("zh_TW")) or "",
            text_en=_opt_str(texts.get("en")) or "",
            notice_kind=_opt_str(notice.get("kind")),
        )


def parse_alert(data: bytes | str) -> AlertPayload | None:
    """Decode a roomguard.alert/1 payload (AlertPayload.parse): None if empty, ValueError if not one."""
    return AlertPayload.parse(data)


def _required(obj: Mapping[str, Any], name: str) -> str:
    v = obj.get(name)
    if not isinstance(v, str) or not v:
        raise ValueError(f"alert payload field {name!r} must be a non-empty string, got {v!r}")
    return v


def _opt_str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _time(obj: Mapping[str, Any], name: str, *, where: str = "") -> datetime | None:
    v = obj.get(name)
    if v is None:
        return None
    try:
        t = datetime.fromisoformat(v) if isinstance(v, str) else None
    except ValueError:
        t = None
    if t is None or t.utcoffset() is None:
        raise ValueError(
            f"alert payload field '{where}{name}' must be an RFC 3339 time with offset, got {v!r}"
        )
    return t


def alert_info(payload: AlertPayload) -> AlertInfo:
    """The board's view of one alert (compliance.facts.AlertInfo)."""
    return AlertInfo(
        id=payload.id,
        rule=payload.rule,
        severity=payload.severity,
        state=payload.state,
        device_class=payload.device_class,
        room=payload.labels.get("room"),
        device=payload.labels.get("device"),
        started_at=payload.started_at,
        resolved_at=payload.resolved_at,
        acked_at=payload.acked_at,
        acked_by=payload.acked_by,
        text_zh=payload.text_zh,
        text_en=payload.text_en,
    )


def opens_review(payload: AlertPayload, rules: Incidents) -> bool:
    """Whether this alert calls for an incident review: critical, of a reviewed class."""
    return payload.severity == "critical" and payload.device_class in rules.classes


def incident_id(payload: AlertPayload) -> str:
    """The review's id: one per firing of an alert."""
    return f"{payload.id}@{utc_key(payload.started_at)}"


def _at(t: datetime, tz: tzinfo) -> str:
    return t.astimezone(tz).isoformat(timespec="seconds")


def _events(p: AlertPayload, tz: tzinfo) -> list[tuple[str, datetime, str]]:
    """(event, time, timeline line) for each state the payload shows, in order."""
    out = [("fired", p.started_at, f"fired at {_at(p.started_at, tz)} / {_at(p.started_at, tz)} 告警發生")]
    if p.acked_at is not None:
        by = p.acked_by or "?"
        note = f" ({p.acked_note})" if p.acked_note else ""
        t = _at(p.acked_at, tz)
        out.append(("acknowledged", p.acked_at, f"acknowledged by {by} at {t} / {t} 由 {by} 確認{note}"))
    if p.resolved_at is not None:
        t = _at(p.resolved_at, tz)
        out.append(("resolved", p.resolved_at, f"resolved at {t} / {t} 告警恢復"))
    return out


def _seen(timeline: Sequence[str]) -> set[tuple[str, datetime]]:
    """The events a timeline already holds, by event word and instant (whole seconds, any offset)."""
    seen = set()
    for line in timeline:
        m = _EVENT_LINE.match(line)
        if m is None:
            continue
        try:
            t = datetime.fromisoformat(m.group(2))
        except ValueError:
            continue
        if t.utcoffset() is not None:
            seen.add((m.group(1), t.astimezone(UTC).replace(microsecond=0)))
    return seen


def incident_from_alert(
    payload: AlertPayload,
    existing: Incident | None,
    rules: Incidents,
    context_lines: Sequence[str] = (),
    *,
    tz: tzinfo = UTC,
) -> Incident | None:
    """The review this alert opens or updates (`existing`: the stored one), None if it calls for none."""
    # context_lines are added once, when the review opens. tz only renders the timeline's times: a
    # redelivery rendered in another zone is still recognised (events compare by instant).
    if not opens_review(payload, rules):
        return None
    iid = incident_id(payload)
    labels = payload.labels
    if existing is None:
        events = _events(payload, tz)
        timeline = [events[0][2], *context_lines, *(line for _, _, line in events[1:])]
        summary = " / ".join(t for t in (payload.text_zh, payload.text_en) if t) or (
            f"{payload.rule} {labels.get('device') or labels.get('room') or ''}".strip()
        )
        return Incident(
            incident_id=iid,
            alert_id=payload.id,
            rule=payload.rule,
            severity=payload.severity,
            device_class=payload.device_class,
            room=labels.get("room"),
            device=labels.get("device"),
            summary=summary,
            started_at=payload.started_at,
            resolved_at=payload.resolved_at,
            timeline=timeline,
            due_at=payload.started_at + timedelta(days=rules.review_days),
        )
    if existing.incident_id != iid:
        raise ValueError(f"review {existing.incident_id!r} is not the one of this alert ({iid!r})")
    seen = _seen(existing.timeline)
    timeline = list(existing.timeline)
    for event, at, line in _events(payload, tz):
        key = (event, at.astimezone(UTC).replace(microsecond=0))
        if key not in seen:
            timeline.append(line)
            seen.add(key)
    changes: dict[str, Any] = {"timeline": timeline}
    if existing.resolved_at is None and payload.resolved_at is not None:
        changes["resolved_at"] = payload.resolved_at
    for name, value in (
        ("alert_id", payload.id),
        ("rule", payload.rule),
        ("severity", payload.severity),
        ("device_class", payload.device_class),
        ("room", labels.get("room")),
        ("device", labels.get("device")),
    ):
        if getattr(existing, name) is None and value is not None:
            changes[name] = value
    return Incident.model_validate({**existing.model_dump(), **changes})
