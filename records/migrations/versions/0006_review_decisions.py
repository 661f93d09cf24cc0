"""A review's decisions in their own rows (compliance.access.store): one decision writes one row.

Before, a decision rewrote the whole review's JSON (20,000 lines: seconds per decision). The review's
JSON stays the snapshot; `access_review_lines` holds one row per reviewed grant with its decision.
Decisions already inside stored reviews are copied over.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lines = op.create_table(
        "access_review_lines",
        sa.Column("review_id", sa.String(length=200), nullable=False),
        sa.Column("grant_id", sa.String(length=200), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("review_id", "grant_id", name=op.f("pk_access_review_lines")),
    )
    reviews = sa.table("access_reviews", sa.column("data", sa.JSON))
    bind = op.get_bind()
    # Stored naive UTC on SQLite, aware elsewhere, like every other time of the records database.
    naive = bind.dialect.name == "sqlite"
    rows = []
    for (data,) in bind.execute(sa.select(reviews.c.data)):
        review = json.loads(data) if isinstance(data, str) else data
        for ln in review["lines"]:
            at = ln.get("decided_at")
            rows.append(
                {
                    "review_id": review["review_id"],
                    "grant_id": ln["grant"]["grant_id"],
                    "row_no": ln["row_no"],
                    "decision": ln.get("decision"),
                    "reason": ln.get("reason") or "",
                    "decided_by": ln.get("decided_by") or "",
                    "decided_at": _utc(at, naive),
                }
            )
    if rows:
        op.bulk_insert(lines, rows)


def _utc(text: str | None, naive: bool) -> datetime | None:
    if text is None:
        return None
    at = datetime.fromisoformat(text).astimezone(UTC)
    return at.replace(tzinfo=None) if naive else at


def downgrade() -> None:
    op.drop_table("access_review_lines")
