"""Door state changes from the bus, kept as access evidence (compliance.access.store).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_door_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device", sa.String(length=200), nullable=False),
        sa.Column("room", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_door_events")),
        sa.UniqueConstraint("at", "device", "state", name="door_event_once"),
    )
    with op.batch_alter_table("access_door_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_door_events_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_door_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_door_events_at"))
    op.drop_table("access_door_events")
