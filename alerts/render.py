# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Pure rendering of a planned notification into a Notification: subjects and bodies in Traditional
Chinese and English, and the `roomguard.alert/1` payload (JSON-compatible)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from alerts.lifecycle import SEVERITIES, AlertView, NotificationPlan
from alerts.notify.base import Notification

SCHEMA = "roomguard.alert/1"
SUMMARY_SCHEMA = "roomguard.alert-summary/1"
LANGS = ("zh_TW", "en")
# Taiwan keeps UTC+8 all year (no daylight saving): times in message texts are local, payloads UTC.
TAIPEI = timezone(timedelta(hours=8), "UTC+8")
SUBJECT_MAX = 200

_SEV = {
    "zh_TW": {"info": "通知", "warning": "警告", "critical": "嚴重"},
    "en": {"info": "INFO", "warning": "WARNING", "critical": "CRITICAL"},
}


def _iso(t: datetime | None) -> str | None:
    # RFC 3339 UTC with microseconds, as every roomguard payload writes times (docs/mqtt.md).
    return None if t is None else t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _local(t: datetime | None, tz: tzinfo) -> str:
    if t is None:
        return "-"
    local = t.astimezone(tz)
    # The site's zone by name (Asia/Taipei) where there is one: "CST" means three different zones.
    return local.strftime("%Y-%m-%d %H:%M:%S") + f" ({getattr(tz, 'key', None) or local.tzname()})"


def _text(texts: Mapping[str, Any], part: str, lang: str) -> str:
    by_lang = texts.get(part)
    if not isinstance(by_lang, Mapping):
        return ""
    return str(by_lang.get(lang) or by_lang.get("en") or "")


def alert_payload(a: AlertView) -> dict[str, Any]:
    """The `roomguard.alert/1` object of one alert (docs/mqtt.md, "Alerts"): its current state."""
    texts: dict[str, str | None] = {lang: _message(a, lang) or None for lang in LANGS}
    for part in ("forecast", "margin"):
        for lang in LANGS:
            texts[f"{part}_{lang}"] = _text(a.texts, part, lang) or None
    acked = None if a.acked_at is None else {"by": a.acked_by, "at": _iso(a.acked_at), "note": a.ack_note}
    return {
        "schema": SCHEMA,
        "id": a.key,
        "state": a.state,
        "severity": a.severity,
        "rule": a.rule_id,
        "labels": dict(a.labels),
        "value": a.value,
        "limit": a.limit,
        "started_at": _iso(a.started_at),
        "resolved_at": _iso(a.resolved_at),
        "acked": acked,
        "texts": texts,
    }


def summary_payload(key: str, members: Sequence[AlertView], severity: str, at: datetime) -> dict[str, Any]:
    """The `roomguard.alert-summary/1` object of a group notification (docs/mqtt.md, "Alert
    summaries"): the group's alerts, each with its own `roomguard.alert/1` payload."""
    first = members[0]
    return {
        "schema": SUMMARY_SCHEMA,
        "id": key,
        "severity": severity,
        "labels": {k: v for k, v in first.labels.items() if k in ("site", "room", "room_name")},
        "count": len(members),
        "kinds": {"firing": len(members)},
        "first_at": _iso(min(m.started_at for m in members)),
        "last_at": _iso(max(m.started_at for m in members)),
        "at": _iso(at),
        "alerts": [
            {"id": m.key, "kind": "firing", "severity": m.severity, "alert": alert_payload(m)}
            for m in members
        ],
    }


def _message(a: AlertView, lang: str) -> str:
    if a.state == "resolved":
        return _text(a.texts, "resolved", lang) or _text(a.texts, "message", lang)
    return _text(a.texts, "message", lang)


def _where(a: AlertView) -> str:
    lb = a.labels
    return "/".join(x for x in (lb.get("site"), lb.get("room"), lb.get("device")) if x)


def _body(a: AlertView, lang: str, tz: tzinfo) -> list[str]:
    zh = lang == "zh_TW"
    lines = [_message(a, lang)]
    for part, zh_name, en_name in (("forecast", "趨勢", "Trend"), ("margin", "電力備援", "Power chain")):
        text = _text(a.texts, part, lang)
        if text and text not in lines[0]:  # default templates already end with them
            lines.append(f"{zh_name}：{text}" if zh else f"{en_name}: {text}")
    sev = _SEV[lang][a.severity]
    if zh:
        lines += [
            f"規則：{a.rule_id}（{sev}）",
            f"位置：{_where(a)}",
            f"開始：{_local(a.started_at, tz)}",
        ]
        if a.resolved_at is not None:
            lines.append(f"恢復：{_local(a.resolved_at, tz)}")
        if a.acked:
            lines.append(f"已確認：{a.acked_by or '-'}（{_local(a.acked_at, tz)}）")
        lines.append(f"告警編號：{a.key}")
    else:
        lines += [f"Rule: {a.rule_id} ({sev})", f"Where: {_where(a)}", f"Since: {_local(a.started_at, tz)}"]
        if a.resolved_at is not None:
            lines.append(f"Resolved: {_local(a.resolved_at, tz)}")
        if a.acked:
            lines.append(f"Acknowledged by {a.acked_by or '-'} at {_local(a.acked_at, tz)}")
        lines.append(f"Alert id: {a.key}")
    return lines


def _tag(plan: NotificationPlan, lang: str) -> str:
    zh = lang == "zh_TW"
    if plan.kind == "escalation":
        if plan.to_escalation_list:
            return "[升級通報]" if zh else "[ESCALATED]"
        return f"[提醒 {plan.level}]" if zh else f"[REMINDER {plan.level}]"
    if plan.kind == "resolved":
        return "[已恢復]" if zh else "[RESOLVED]"
    return ""


def _cut(s: str) -> str:
    s = " ".join(s.split())
    return s if len(s) <= SUBJECT_MAX else s[: SUBJECT_MAX - 1] + "…"


def render(plan: NotificationPlan, alerts: Sequence[AlertView], tz: tzinfo = TAIPEI) -> Notification:
    """The Notification for `plan` about `alerts` (the plan's keys, in its order)."""
    by_key = {a.key: a for a in alerts}
    members = [by_key[k] for k in plan.keys if k in by_key]
    if not members:
        raise ValueError(f"no alert for notification {plan.key}")
    severity = max((m.severity for m in members), key=SEVERITIES.index)
    subjects: dict[str, str] = {}
    bodies: dict[str, str] = {}
    for lang in LANGS:
        sev = f"[{_SEV[lang][severity]}]"
        if plan.kind == "summary":
            first = members[0]
            room = first.labels.get("room", "")
            if lang == "zh_TW":
                subject = f"{sev} {first.rule_id}：{room} {len(members)} 項告警"
                head = f"{room} 同一規則 {first.rule_id} 共 {len(members)} 項告警："
            else:
                subject = f"{sev} {first.rule_id}: {len(members)} alerts in {room}"
                head = f"{len(members)} alerts of rule {first.rule_id} in {room}:"
            lines = [head, *(f"- {_message(m, lang)}（{m.key}）" if lang == "zh_TW" else
                             f"- {_message(m, lang)} ({m.key})" for m in members)]  # fmt: skip
            lines.append(f"開始：{_local(first.started_at, tz)}" if lang == "zh_TW" else
                         f"Since: {_local(first.started_at, tz)}")  # fmt: skip
        else:
            a = members[0]
            subject = f"{sev}{_tag(plan, lang)} {_message(a, lang)}"
            lines = _body(a, lang, tz)
            if plan.kind == "escalation":
                lines.append(
                    "尚未確認，請處理並於系統中確認（ack）。"
                    if lang == "zh_TW"
                    else "Not acknowledged yet: please act and acknowledge it."
                )
        subjects[lang] = _cut(subject)
        bodies[lang] = "\n".join(lines)
    if plan.kind == "summary":
        at = plan.at if plan.at is not None else max(m.last_event_at for m in members)
        payload = summary_payload(plan.key, members, severity, at)
    else:
        # Which notice this is: a reminder carries the same alert state as the first notice, and a
        # receiver that dedups by id + state + started_at must still be able to tell them apart.
        payload = {**alert_payload(members[0]), "notice": {"kind": plan.kind, "level": plan.level}}
    return Notification(
        key=plan.key,
        kind=plan.kind,
        severity=severity,
        subject_zh=subjects["zh_TW"],
        subject_en=subjects["en"],
        body_zh=bodies["zh_TW"],
        body_en=bodies["en"],
        payload=payload,
    )


def notification_json(n: Notification) -> dict[str, Any]:
    """A Notification as a JSON-compatible dict (the outbox row)."""
    return {
        "key": n.key,
        "kind": n.kind,
        "severity": n.severity,
        "subject_zh": n.subject_zh,
        "subject_en": n.subject_en,
        "body_zh": n.body_zh,
        "body_en": n.body_en,
        "payload": n.payload,
    }


def notification_from_json(d: Mapping[str, Any]) -> Notification:
    """The Notification `notification_json` stored."""
    return Notification(
        key=d["key"],
        kind=d["kind"],
        severity=d["severity"],
        subject_zh=d["subject_zh"],
        subject_en=d["subject_en"],
        body_zh=d["body_zh"],
        body_en=d["body_en"],
        payload=dict(d.get("payload") or {}),
    )
