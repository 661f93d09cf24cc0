"""The measured days of the environment envelopes, kept in the records database (a DayStore).

Table `compliance_envelope_days` (migration 0003): one row per site, envelope key, local day and room
with the day's counts, sums, extremes and samples inside each envelope as JSON
(`compliance.envelope.DayEnvelope`). The rows are derived from InfluxDB and re-derivable at any time (see
`compliance.envelope.envelope_days`): they are a cache of the database's own aggregates, not records,
so they are replaced without an audit entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from compliance.envelope import DayEnvelope
from records.db import Base


class EnvelopeDayRow(Base):
    """One room on one local day, measured against the envelopes `key` names."""

    __tablename__ = "compliance_envelope_days"
    __table_args__ = (UniqueConstraint("site", "key", "day", "room", name="site_key_day_room"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date, index=True)
    room: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    measured_at: Mapped[datetime]


class EnvelopeDays:
    """Load and replace kept days through the records database's sessions."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def load(self, site: str, key: str, first: date, last: date) -> list[DayEnvelope]:
        """The kept days in [first, last], every room."""
        with self._sessions() as session:
            rows = session.scalars(
                select(EnvelopeDayRow)
                .where(EnvelopeDayRow.site == site, EnvelopeDayRow.key == key)
                .where(EnvelopeDayRow.day >= first, EnvelopeDayRow.day <= last)
                .order_by(EnvelopeDayRow.day, EnvelopeDayRow.room)
            ).all()
            return [DayEnvelope.from_json(r.room, r.day, r.data) for r in rows]

    def save(
        self, site: str, key: str, days: Sequence[date], rows: Sequence[DayEnvelope], now: datetime
    ) -> None:
        """Replace what is kept for `days` with `rows`, in one transaction."""
        wanted = set(days)
        with self._sessions.begin() as session:
            for chunk in _chunks(sorted(wanted), 500):
                session.execute(
                    delete(EnvelopeDayRow).where(
                        EnvelopeDayRow.site == site, EnvelopeDayRow.key == key, EnvelopeDayRow.day.in_(chunk)
                    )
                )
            for d in rows:
                if d.day in wanted:
                    session.add(
                        EnvelopeDayRow(
                            site=site, key=key, day=d.day, room=d.room, data=d.to_json(), measured_at=now
                        )
                    )


def _chunks(items: Sequence[date], size: int) -> list[Sequence[date]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
