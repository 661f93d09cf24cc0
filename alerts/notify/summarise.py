# ruff: noqa: RUF001, RUF002 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""Per-channel rate limit that summarises instead of dropping (pure: the clock is a parameter).

A channel may send `Budget.count` notifications per `Budget.window_s` (a sliding window over what it
sent). `plan()` takes the notifications waiting for one channel and that channel's recent send times
and decides: the most urgent ones that fit the budget go out as they are, and every other one is counted
in exactly one summary per room ("另有 12 則告警：機房A" / "12 more alerts in 機房A"). Nothing is
dropped: each input is either sent or named in a summary (its key is listed in the summary's payload).

Summaries are sent even when the budget is spent (they replace what was held back), at most one per
room per call, and they count against the next window like any other send. A caller plans once per
flush (say every 10 s) with everything that became due since, then sends `Plan.notifications` in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.notify.base import SEVERITY_RANK, Notification

SUMMARY_SCHEMA = "roomguard.alert-summary/1"
LISTED = 10  # subjects listed in a summary's text; the payload lists every key


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `count` notifications per `window_s` seconds on one channel."""

    count: int
    window_s: float

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("budget count must be >= 0")
        if not self.window_s > 0:
            raise ValueError("budget window_s must be > 0")


@dataclass(frozen=True, slots=True)
class Pending:
    """A notification waiting for a channel, and when it became due (unix seconds)."""

    notification: Notification
    at: float


@dataclass(frozen=True, slots=True)
class Summary:
    """One summary notification and the indices (into the pending sequence) of what it counts."""

    notification: Notification
    site: str | None
    room: str | None
    members: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send now: `sent` (indices into the pending sequence, oldest first) as they are, then the
    `summaries`; `history` is the channel's send times to pass to the next `plan()` call."""

    sent: tuple[int, ...]
    summaries: tuple[Summary, ...]
    history: tuple[float, ...]
    notifications: tuple[Notification, ...]


def _labels(n: Notification) -> dict[str, Any]:
    labels = n.payload.get("labels")
    return labels if isinstance(labels, dict) else {}


def _room_of(n: Notification) -> tuple[str | None, str | None, str]:
    """(site, room id, display name): the room's name from `labels.room_name` when the payload carries
    one, else the room id, else the site (an alert of no single room)."""
    lb = _labels(n)
    site = lb.get("site") if isinstance(lb.get("site"), str) and lb.get("site") else None
    room = lb.get("room") if isinstance(lb.get("room"), str) and lb.get("room") else None
    name = lb.get("room_name") if isinstance(lb.get("room_name"), str) and lb.get("room_name") else None
    return site, room, str(name or room or site or "roomguard")


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def plan(budget: Budget, pending: Sequence[Pending], now: float, history: Sequence[float] = ()) -> Plan:
    """Decide what one channel sends at `now` (see the module docstring).

    `history`: when this channel sent before (a previous Plan's `history`); times outside the window
    are forgotten. Within the free budget the most severe notifications go first, the earliest first
    among equals; the rest are summarised per (site, room).
    """
    recent = sorted(t for t in history if now - budget.window_s < t <= now)
    free = max(0, budget.count - len(recent))
    order = sorted(
        range(len(pending)),
        key=lambda i: (-SEVERITY_RANK.get(pending[i].notification.severity, 0), pending[i].at, i),
    )
    sent = tuple(sorted(order[:free], key=lambda i: (pending[i].at, i)))
    held = sorted(order[free:], key=lambda i: (pending[i].at, i))

    rooms: dict[tuple[str | None, str | None], list[int]] = {}
    names: dict[tuple[str | None, str | None], str] = {}
    for i in held:
        site, room, name = _room_of(pending[i].notification)
        rooms.setdefault((site, room), []).append(i)
        names.setdefault((site, room), name)
    summaries = tuple(
        Summary(_summary(budget, pending, ms, site, room, names[(site, room)], now), site, room, tuple(ms))
        for (site, room), ms in rooms.items()
    )
    out = (*(pending[i].notification for i in sent), *(s.notification for s in summaries))
    return Plan(sent, summaries, (*recent, *([now] * len(out))), out)


def _summary(
    budget: Budget,
    pending: Sequence[Pending],
    members: list[int],
    site: str | None,
    room: str | None,
    name: str,
    now: float,
) -> Notification:
    notes = [pending[i].notification for i in members]
    n = len(notes)
    severity = max(notes, key=lambda x: SEVERITY_RANK.get(x.severity, 0)).severity
    kinds: dict[str, int] = {}
    for x in notes:
        kinds[x.kind] = kinds.get(x.kind, 0) + 1
    more = n - LISTED
    zh_lines = [f"• {x.subject_zh}" for x in notes[:LISTED]]
    en_lines = [f"• {x.subject_en}" for x in notes[:LISTED]]
    if more > 0:
        zh_lines.append(f"…以及另外 {more} 則")
        en_lines.append(f"… and {more} more")
    limit_zh = f"此通道每 {budget.window_s:g} 秒最多發送 {budget.count} 則通知，以下告警改以摘要通知："
    limit_en = (
        f"This channel sends at most {budget.count} notifications per {budget.window_s:g} s; "
        "these alerts are summarised instead:"
    )
    key = f"summary:{site or '-'}:{room or '-'}:{int(now)}"
    labels: dict[str, str] = {}
    if site:
        labels["site"] = site
    if room:
        labels["room"] = room
    if name not in (room, site, "roomguard"):
        labels["room_name"] = name
    payload: dict[str, Any] = {
        "schema": SUMMARY_SCHEMA,
        "id": key,
        "severity": severity,
        "labels": labels,
        "count": n,
        "kinds": kinds,
        "first_at": _rfc3339(min(pending[i].at for i in members)),
        "last_at": _rfc3339(max(pending[i].at for i in members)),
        "at": _rfc3339(now),
        # Every summarised notification with its own payload: a receiver that files alerts loses none.
        "alerts": [
            {"id": x.key, "kind": x.kind, "severity": x.severity, "alert": x.payload or None} for x in notes
        ],
    }
    plural = "alert" if n == 1 else "alerts"
    return Notification(
        key=key,
        kind="summary",
        severity=severity,
        subject_zh=f"另有 {n} 則告警：{name}",
        subject_en=f"{n} more {plural} in {name}",
        body_zh="\n".join([limit_zh, *zh_lines]),
        body_en="\n".join([limit_en, *en_lines]),
        payload=payload,
    )


__all__ = ["SUMMARY_SCHEMA", "Budget", "Pending", "Plan", "Summary", "plan"]
