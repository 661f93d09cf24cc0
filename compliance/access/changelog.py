"""Sheet E of the review, the change log, from the audit trail of the stored grants.

Every create and update of a grant is in the hash-chained audit log with the grant before and after
(compliance.access.store). A change belongs to the quarter when it took effect in it: a new grant at its
valid-from, a changed one when the change was recorded (an end date brought forward: at that end date,
if it is earlier). A change is matched when its grant names a ticket and an approver who is neither its
requester nor its implementer; an unmatched change is also an exception (sheet D).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from compliance.access.export import ChangeLogEntry
from compliance.access.model import GrantChange


def change_log(
    changes: Iterable[GrantChange], start: datetime, end: datetime, tz: tzinfo
) -> list[ChangeLogEntry]:
    """The sheet E rows of [start, end), by time."""
    rows = [entry for c in changes if (entry := _entry(c, tz)) is not None and start <= entry.event_at < end]
    return sorted(rows, key=lambda e: e.event_at)


def _entry(c: GrantChange, tz: tzinfo) -> ChangeLogEntry | None:
    g, old = c.after, c.before
    if c.action == "create" or old is None:
        action, at, before = "grant", _time(g["valid_from"]), ""
    else:
        action, at = _kind(old, g), c.at
        ended = _time(g["valid_to"]) if g.get("valid_to") else None
        if action == "revoke" and ended is not None and ended < at:
            at = ended
        before = _terms(old, tz)
    if action == "":
        return None  # only bookkeeping changed (a name, a ticket typo): not an ACS change
    return ChangeLogEntry(
        event_at=at,
        operator=str(g.get("implementer") or c.actor),
        action=action,
        holder_id=str(g["person_id"]),
        credential_id=str(g["credential_id"]),
        zone=",".join(g["zones"]),
        before=before,
        after=_terms(g, tz),
        ticket=str(g.get("ticket", "")),
        matched=_approved(g),
    )


def _kind(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """revoke (end date set or brought forward), schedule change, modify, or '' (nothing the ACS holds)."""
    access = ("credential_id", "zones", "valid_from")
    if old.get("valid_to") != new.get("valid_to") and all(old.get(k) == new.get(k) for k in access):
        old_end, new_end = old.get("valid_to"), new.get("valid_to")
        if new_end is not None and (old_end is None or _time(new_end) < _time(old_end)):
            return "revoke"
        return "modify"
    if any(old.get(k) != new.get(k) for k in (*access, "valid_to")):
        return "modify"
    if old.get("schedule") != new.get("schedule"):
        return "schedule change"
    return ""


def _approved(g: Mapping[str, Any]) -> bool:
    approver = str(g.get("approver", "")).strip().casefold()
    others = {str(g.get(k, "")).strip().casefold() for k in ("requester", "implementer")}
    return bool(str(g.get("ticket", "")).strip()) and bool(approver) and approver not in others


def _terms(g: Mapping[str, Any], tz: tzinfo) -> str:
    until = f"{_time(g['valid_to']).astimezone(tz):%Y-%m-%d %H:%M}" if g.get("valid_to") else "—"
    since = f"{_time(g['valid_from']).astimezone(tz):%Y-%m-%d %H:%M}"
    return f"{','.join(g['zones'])} | {g.get('schedule', '24x7')} | {since}..{until}"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
