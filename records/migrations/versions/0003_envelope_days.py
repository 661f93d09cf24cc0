"""The measured days of the environment envelopes (compliance.envelope_store).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compliance_envelope_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("room", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_envelope_days")),
        sa.UniqueConstraint("site", "key", "day", "room", name="site_key_day_room"),
    )
    with op.batch_alter_table("compliance_envelope_days", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_compliance_envelope_days_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("compliance_envelope_days", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compliance_envelope_days_day"))
    op.drop_table("compliance_envelope_days")
