"""The alert tables of the records database (SQLAlchemy 2 typed ORM) and a small typed repository.

Tables (schema: records/migrations/versions/0001_alerts.py, checked equal to these models by a test):
`alerts` (one row per dedup key; a re-fire reuses it as a new episode), `alert_history` (append-only
lifecycle events), `silences` (silences and maintenance windows), `engine_state` (the engine's JSON state
in one row), `deliveries` (the notification outbox) and `delivery_attempts`. Every datetime is UTC and
timezone-aware (records.db.UtcDateTime).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.engine import EngineState
from alerts.lifecycle import AlertView, HistoryEntry, SilenceView
from records.db import Base

KEY_LEN = 400  # dedup keys: rule id and subject (site, room, device, metric) joined by ':'
NAME_LEN = 200  # people (acked_by, created_by) and channel names
ENGINE_STATE_ROW = 1


class Alert(Base):
    """One alert (dedup key): the current or last episode; history holds every transition."""

    __tablename__ = "alerts"
    __table_args__ = (CheckConstraint("state IN ('firing', 'resolved')", name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(KEY_LEN), unique=True)
    rule_id: Mapped[str] = mapped_column(String(63), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    limit: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    last_event_at: Mapped[datetime]
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)  # message/resolved/forecast/margin: lang → text
    acked_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    acked_at: Mapped[datetime | None]
    ack_note: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime | None]  # last notification of this episode (firing or reminder)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    notify_count: Mapped[int] = mapped_column(Integer, default=0)
    # Lifecycle bookkeeping: when the firing notice may go out (group wait), why it is held back
    # (silence:<id>, maintenance:<id>, inhibited:<key>, flapping) and recent firing notices (flap damping).
    notify_after: Mapped[datetime | None]
    suppressed: Mapped[str | None] = mapped_column(String(KEY_LEN + 16))
    fire_notices: Mapped[list[str]] = mapped_column(JSON, default=list)


class AlertHistory(Base):
    """Append-only: fired, resolved, acked, silenced, inhibited, flapping, escalated, notified,
    delivery_failed."""

    __tablename__ = "alert_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime]
    what: Mapped[str] = mapped_column(String(32))
    who: Mapped[str | None] = mapped_column(String(NAME_LEN))
    note: Mapped[str | None] = mapped_column(Text)


class Silence(Base):
    """A silence or a maintenance window: matching alerts are stored and shown, never notified."""

    __tablename__ = "silences"
    __table_args__ = (CheckConstraint("kind IN ('silence', 'maintenance')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="silence")
    matchers: Mapped[dict[str, Any]] = mapped_column(JSON)  # label (or "rule") → value or list of values
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime]
    removed_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    removed_at: Mapped[datetime | None]


class EngineStateRow(Base):
    """The rule engine's state (EngineState.to_json) in a single row."""

    __tablename__ = "engine_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class Delivery(Base):
    """The notification outbox: one row per notification and channel."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_key: Mapped[str] = mapped_column(String(KEY_LEN), index=True)  # the notification's key
    alert_keys: Mapped[list[str]] = mapped_column(JSON)  # every alert it is about (a summary: several)
    channel: Mapped[str] = mapped_column(String(NAME_LEN))
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer, default=0)
    notification: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)  # never a secret (scrubbed by the service)


class DeliveryAttempt(Base):
    """One try of one delivery."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


# ------------------------------------------------------------------------------------- conversions


def alert_view(row: Alert) -> AlertView:
    """The lifecycle's view of a stored alert."""
    return AlertView(
        key=row.dedup_key,
        rule_id=row.rule_id,
        severity=row.severity,  # type: ignore[arg-type]  # the CHECK and the writers keep it a Severity
        state=row.state,  # type: ignore[arg-type]
        labels=dict(row.labels),
        value=row.value,
        limit=row.limit,
        started_at=row.started_at,
        resolved_at=row.resolved_at,
        last_event_at=row.last_event_at,
        texts=dict(row.texts),
        acked_by=row.acked_by,
        acked_at=row.acked_at,
        ack_note=row.ack_note,
        notified_at=row.notified_at,
        escalation_level=row.escalation_level,
        notify_count=row.notify_count,
        notify_after=row.notify_after,
        suppressed=row.suppressed,
        fire_notices=tuple(datetime.fromisoformat(t) for t in row.fire_notices or ()),
        id=row.id,
    )


def _fill(row: Alert, a: AlertView) -> None:
    row.dedup_key = a.key
    row.rule_id = a.rule_id
    row.severity = a.severity
    row.state = a.state
    row.labels = dict(a.labels)
    row.value = a.value
    row.limit = a.limit
    row.started_at = a.started_at
    row.resolved_at = a.resolved_at
    row.last_event_at = a.last_event_at
    row.texts = dict(a.texts)
    row.acked_by = a.acked_by
    row.acked_at = a.acked_at
    row.ack_note = a.ack_note
    row.notified_at = a.notified_at
    row.escalation_level = a.escalation_level
    row.notify_count = a.notify_count
    row.notify_after = a.notify_after
    row.suppressed = a.suppressed
    row.fire_notices = [t.isoformat() for t in a.fire_notices]


def silence_view(row: Silence) -> SilenceView:
    """The lifecycle's view of a stored silence."""
    return SilenceView(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        matchers=dict(row.matchers),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        removed_at=row.removed_at,
    )


# -------------------------------------------------------------------------------------- repository


def is_silenced(suppressed: str | None) -> bool:
    """True if an alert is held back by a silence or a maintenance window (not by inhibition or
    flap damping: those are the engine's own, not a person's)."""
    return suppressed is not None and suppressed.startswith(("silence:", "maintenance:"))


@dataclass(slots=True)
class AlertCounts:
    """Firing alerts per severity: all of them (open), acknowledged, silenced."""

    open: dict[str, int] = field(default_factory=dict)
    acknowledged: dict[str, int] = field(default_factory=dict)
    silenced: dict[str, int] = field(default_factory=dict)

    def add(self, severity: str, *, acked: bool, silenced: bool) -> None:
        """Count one firing alert."""
        self.open[severity] = self.open.get(severity, 0) + 1
        if acked:
            self.acknowledged[severity] = self.acknowledged.get(severity, 0) + 1
        if silenced:
            self.silenced[severity] = self.silenced.get(severity, 0) + 1


class AlertStore:
    """Typed access to the alert tables inside one session (the caller owns the transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- engine state

    def load_engine_state(self) -> EngineState | None:
        """The stored engine state (locked for this transaction where the database can), or None."""
        row = self.session.scalar(
            select(EngineStateRow).where(EngineStateRow.id == ENGINE_STATE_ROW).with_for_update()
        )
        return None if row is None else EngineState.from_json(row.state)

    def save_engine_state(self, state: EngineState, now: datetime) -> None:
        """Replace the stored engine state."""
        row = self.session.get(EngineStateRow, ENGINE_STATE_ROW)
        if row is None:
            self.session.add(EngineStateRow(id=ENGINE_STATE_ROW, state=state.to_json(), updated_at=now))
        else:
            row.state = state.to_json()
            row.updated_at = now

    # -- alerts

    def alert_row(self, key_or_id: str | int) -> Alert | None:
        """An alert by dedup key or id."""
        if isinstance(key_or_id, int):
            return self.session.get(Alert, key_or_id)
        return self.session.scalar(select(Alert).where(Alert.dedup_key == key_or_id))

    def working_set(self, keys: Iterable[str]) -> list[AlertView]:
        """What the lifecycle needs: every firing alert, plus the alerts of `keys` in any state."""
        wanted = set(keys)
        q = select(Alert).where(Alert.state == "firing")
        if wanted:
            q = select(Alert).where((Alert.state == "firing") | Alert.dedup_key.in_(sorted(wanted)))
        return [alert_view(r) for r in self.session.scalars(q.order_by(Alert.id))]

    def open_alerts(self) -> list[Alert]:
        """Firing alerts, oldest first."""
        q = select(Alert).where(Alert.state == "firing").order_by(Alert.started_at, Alert.id)
        return list(self.session.scalars(q))

    def counts(self) -> AlertCounts:
        """How many alerts fire now, and how many of them are acknowledged and silenced, by severity."""
        q = select(Alert.severity, Alert.acked_by, Alert.suppressed).where(Alert.state == "firing")
        counts = AlertCounts()
        for severity, acked_by, suppressed in self.session.execute(q):
            counts.add(severity, acked=acked_by is not None, silenced=is_silenced(suppressed))
        return counts

    def save_alerts(self, alerts: Sequence[AlertView]) -> dict[str, int]:
        """Insert or update alerts; returns dedup key → id for each."""
        ids: dict[str, int] = {}
        for a in alerts:
            row = self.session.get(Alert, a.id) if a.id is not None else self.alert_row(a.key)
            if row is None:
                row = Alert()
                self.session.add(row)
            _fill(row, a)
        self.session.flush()
        for a in alerts:
            row = self.alert_row(a.key)
            if row is not None:
                ids[a.key] = row.id
        return ids

    def add_history(self, entries: Iterable[HistoryEntry], ids: dict[str, int]) -> None:
        """Append lifecycle events (alerts must be saved first)."""
        for e in entries:
            alert_id = ids.get(e.key)
            if alert_id is None:
                row = self.alert_row(e.key)
                if row is None:
                    continue
                alert_id = row.id
            self.session.add(AlertHistory(alert_id=alert_id, at=e.at, what=e.what, who=e.who, note=e.note))

    def history(
        self,
        key_or_id: str | int | None = None,
        since: datetime | None = None,
        limit: int = 500,
        *,
        before: int | None = None,
    ) -> list[tuple[str, AlertHistory]]:
        """(dedup key, entry) newest last; of one alert or of all; with `before`, entries older than that
        history id."""
        q = select(Alert.dedup_key, AlertHistory).join(Alert, Alert.id == AlertHistory.alert_id)
        if isinstance(key_or_id, int):
            q = q.where(Alert.id == key_or_id)
        elif key_or_id is not None:
            q = q.where(Alert.dedup_key == key_or_id)
        if since is not None:
            q = q.where(AlertHistory.at >= since)
        if before is not None:
            q = q.where(AlertHistory.id < before)
        q = q.order_by(AlertHistory.id.desc()).limit(limit)
        return [(k, h) for k, h in reversed(self.session.execute(q).tuples().all())]

    # -- silences

    def active_silences(self, now: datetime) -> list[SilenceView]:
        """Silences and maintenance windows in force at `now` (or later: the lifecycle checks starts)."""
        q = select(Silence).where(Silence.removed_at.is_(None), Silence.ends_at > now).order_by(Silence.id)
        return [silence_view(r) for r in self.session.scalars(q)]
