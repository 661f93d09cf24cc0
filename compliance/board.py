"""The board as people read it (latest stored result per item) and the test timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compliance.items import ITEMS, Item
from compliance.kinds import Drill, GeneratorTest, Inspection, UpsTest
from compliance.result import CheckResult, Status
from compliance.store import Records, evidence_json


@dataclass(frozen=True, slots=True)
class BoardLine:
    """One item of the board with its newest stored result (None: never evaluated) and when."""

    item: Item
    result: CheckResult | None
    at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The line as JSON (for --json and the evidence pack)."""
        r = self.result
        return {
            "item": self.item.key,
            "code": self.item.code,
            "title_zh": self.item.title_zh,
            "title_en": self.item.title_en,
            "status": r.status if r else "unknown",
            "reason_zh": r.reason_zh if r else "尚未評估",
            "reason_en": r.reason_en if r else "not evaluated yet",
            "evaluated_at": self.at.isoformat() if self.at else None,
            "last_evidence_at": r.last_evidence_at.isoformat() if r and r.last_evidence_at else None,
            "next_due": r.next_due.isoformat() if r and r.next_due else None,
            "evidence": [evidence_json(e) for e in r.evidence] if r else [],
        }


def latest_board(records: Records, *, until: datetime | None = None) -> list[BoardLine]:
    """Every item in board order with its newest result (stored before `until`, if given)."""
    newest: dict[str, tuple[datetime, CheckResult]] = {}
    for entry in records.check_history(until=until):
        newest[entry.result.item] = (entry.at, entry.result)
    out = []
    for item in ITEMS:
        at, result = newest.get(item.key, (None, None))
        out.append(BoardLine(item, result, at))
    return out


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One test or inspection on the timeline."""

    at: datetime
    kind: str
    subject: str
    status: Status
    text: str
    ref: str = ""  # the record's natural key


def timeline(records: Records, start: datetime, end: datetime) -> list[TimelineEntry]:
    """Generator runs, UPS tests, inspections and drills in [start, end), oldest first."""
    out: list[TimelineEntry] = []
    for g in records.of_kind(GeneratorTest, since=start, until=end):
        out.append(
            TimelineEntry(
                g.started_at,
                g.KIND,
                g.device,
                "pass" if g.counts else "warn",
                f"{g.on_load_minutes:.1f} min, {g.trigger}; {g.reason or ''}".strip("; "),
                g.ref(),
            )
        )
    for u in records.of_kind(UpsTest, since=start, until=end):
        status: Status = {"passed": "pass", "warning": "warn"}.get(u.result, "fail")  # type: ignore[assignment]
        out.append(
            TimelineEntry(u.tested_at, u.KIND, u.device, status, f"{u.test_type}: {u.result}", u.ref())
        )
    for i in records.of_kind(Inspection, since=start, until=end):
        out.append(
            TimelineEntry(
                i.inspected_at,
                i.KIND,
                i.system,
                "pass" if i.result == "pass" else "fail",
                f"{i.inspector}",
                i.ref(),
            )
        )
    for d in records.of_kind(Drill, since=start, until=end):
        status = {"pass": "pass", "partial": "warn"}.get(d.result, "fail")  # type: ignore[assignment]
        out.append(TimelineEntry(d.held_at, d.KIND, d.drill_id, status, d.scenario, d.ref()))
    return sorted(out, key=lambda e: e.at)
