"""What a CC-16000 check returns: a status, the reason in zh-TW and English, and its evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Status = Literal["pass", "warn", "fail", "unknown"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "unknown")
# Worst first: a board line combining several findings shows the worst of them.
SEVERITY_ORDER: dict[Status, int] = {"fail": 0, "unknown": 1, "warn": 2, "pass": 3}


@dataclass(frozen=True, slots=True)
class Evidence:
    """A pointer to what a result rests on: a record (kind, ref), an alert, or a telemetry series."""

    kind: str  # a record kind (generator_test, duty, ...), "alert", "reading" or "config"
    ref: str
    at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One board line: item, status, bilingual reason, evidence, when the last evidence is from and
    when the next occurrence is due."""

    item: str
    status: Status
    reason_zh: str
    reason_en: str
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    last_evidence_at: datetime | None = None
    next_due: datetime | None = None

    def days_to_due(self, now: datetime) -> float | None:
        """Days until the next due date (negative: overdue), None without one."""
        if self.next_due is None:
            return None
        return round((self.next_due - now).total_seconds() / 86_400, 2)


def worst(statuses: list[Status]) -> Status:
    """The worst of several statuses (no statuses at all: unknown)."""
    if not statuses:
        return "unknown"
    return min(statuses, key=SEVERITY_ORDER.__getitem__)
