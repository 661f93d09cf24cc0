"""JSON forms of the access values (holders, grants, flags, reviews) for the records database and --json."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from compliance.access.flags import Flag
from compliance.access.model import Badge, Grant, Holder, Schedule
from compliance.access.review import Review, ReviewLine, SignOff


def _t(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _req(text: str) -> datetime:
    return datetime.fromisoformat(text)


def holder_json(h: Holder) -> dict[str, Any]:
    """A holder as JSON."""
    return {
        "person_id": h.person_id,
        "name": h.name,
        "holder_type": h.holder_type,
        "org_unit": h.org_unit,
        "left_at": _t(h.left_at),
    }


def holder_of(d: dict[str, Any]) -> Holder:
    """The holder `holder_json` wrote."""
    return Holder(d["person_id"], d["name"], d["holder_type"], d.get("org_unit", ""), _at(d.get("left_at")))


def grant_json(g: Grant) -> dict[str, Any]:
    """A grant as JSON (the schedule as its text)."""
    return {
        "grant_id": g.grant_id,
        "person_id": g.person_id,
        "credential_id": g.credential_id,
        "zones": list(g.zones),
        "valid_from": _t(g.valid_from),
        "valid_to": _t(g.valid_to),
        "schedule": g.schedule.text,
        "requester": g.requester,
        "approver": g.approver,
        "implementer": g.implementer,
        "ticket": g.ticket,
        "work_order": g.work_order,
    }


def grant_of(d: dict[str, Any]) -> Grant:
    """The grant `grant_json` wrote."""
    return Grant(
        d["grant_id"],
        d["person_id"],
        d["credential_id"],
        tuple(d["zones"]),
        _req(d["valid_from"]),
        _at(d.get("valid_to")),
        Schedule.parse(d.get("schedule", "24x7")),
        d.get("requester", ""),
        d.get("approver", ""),
        d.get("implementer", ""),
        d.get("ticket", ""),
        d.get("work_order", ""),
    )


def badge_json(b: Badge) -> dict[str, Any]:
    """A badge event as JSON."""
    return {
        "at": _t(b.at),
        "door": b.door,
        "zone": b.zone,
        "credential_id": b.credential_id,
        "granted": b.granted,
        "direction": b.direction,
    }


def flag_json(f: Flag) -> dict[str, Any]:
    """A flag as JSON."""
    return {
        "code": f.code,
        "grant_id": f.grant_id,
        "person_id": f.person_id,
        "reason_zh": f.reason_zh,
        "reason_en": f.reason_en,
        "evidence": list(f.evidence),
    }


def flag_of(d: dict[str, Any]) -> Flag:
    """The flag `flag_json` wrote."""
    return Flag(
        d["code"], d["grant_id"], d["person_id"], d["reason_zh"], d["reason_en"], tuple(d["evidence"])
    )


def line_json(ln: ReviewLine) -> dict[str, Any]:
    """A review line as JSON."""
    return {
        "row_no": ln.row_no,
        "grant": grant_json(ln.grant),
        "holder": holder_json(ln.holder) if ln.holder else None,
        "flags": [flag_json(f) for f in ln.flags],
        "last_used_at": _t(ln.last_used_at),
        "entries_in_period": ln.entries_in_period,
        "change_type": ln.change_type,
        "before": ln.before,
        "decision": ln.decision,
        "reason": ln.reason,
        "decided_by": ln.decided_by,
        "decided_at": _t(ln.decided_at),
    }


def line_of(d: dict[str, Any]) -> ReviewLine:
    """The line `line_json` wrote."""
    return ReviewLine(
        d["row_no"],
        grant_of(d["grant"]),
        holder_of(d["holder"]) if d["holder"] else None,
        tuple(flag_of(f) for f in d["flags"]),
        _at(d["last_used_at"]),
        d["entries_in_period"],
        d["change_type"],
        d["before"],
        d["decision"],
        d["reason"],
        d["decided_by"],
        _at(d["decided_at"]),
    )


def review_json(r: Review) -> dict[str, Any]:
    """A review as JSON (what the records database keeps)."""
    return {
        "review_id": r.review_id,
        "site_id": r.site_id,
        "quarter": r.quarter,
        "period_start": _t(r.period_start),
        "period_end": _t(r.period_end),
        "snapshot_at": _t(r.snapshot_at),
        "prepared_by": r.prepared_by,
        "lines": [line_json(ln) for ln in r.lines],
        "removed": [grant_json(g) for g in r.removed],
        "previous_review_id": r.previous_review_id,
        "status": r.status,
        "sign_offs": [{"by": s.by, "at": _t(s.at), "role": s.role, "note": s.note} for s in r.sign_offs],
        "supersedes": r.supersedes,
    }


def review_of(d: dict[str, Any]) -> Review:
    """The review `review_json` wrote."""
    return Review(
        d["review_id"],
        d["site_id"],
        d["quarter"],
        _req(d["period_start"]),
        _req(d["period_end"]),
        _req(d["snapshot_at"]),
        d["prepared_by"],
        tuple(line_of(x) for x in d["lines"]),
        tuple(grant_of(g) for g in d["removed"]),
        d["previous_review_id"],
        d["status"],
        tuple(SignOff(s["by"], _req(s["at"]), s["role"], s["note"]) for s in d["sign_offs"]),
        d["supersedes"],
    )
