"""Access rights: holders, grants, badge events and quarterly reviews (compliance.access.store).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_badges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("door", sa.String(length=200), nullable=False),
        sa.Column("zone", sa.String(length=200), nullable=False),
        sa.Column("credential_id", sa.String(length=200), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_badges")),
        sa.UniqueConstraint("at", "door", "credential_id", "direction", name="badge_once"),
    )
    with op.batch_alter_table("access_badges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_badges_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_badges_credential_id"), ["credential_id"], unique=False)

    op.create_table(
        "access_grants",
        sa.Column("grant_id", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.String(length=200), nullable=False),
        sa.Column("credential_id", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_access_grants")),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_grants_credential_id"), ["credential_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_grants_person_id"), ["person_id"], unique=False)

    op.create_table(
        "access_holders",
        sa.Column("person_id", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_access_holders")),
    )
    op.create_table(
        "access_reviews",
        sa.Column("review_id", sa.String(length=200), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("quarter", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_access_reviews")),
    )
    with op.batch_alter_table("access_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_reviews_quarter"), ["quarter"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_reviews_quarter"))
    op.drop_table("access_reviews")
    op.drop_table("access_holders")
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_grants_person_id"))
        batch_op.drop_index(batch_op.f("ix_access_grants_credential_id"))
    op.drop_table("access_grants")
    with op.batch_alter_table("access_badges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_badges_credential_id"))
        batch_op.drop_index(batch_op.f("ix_access_badges_at"))
    op.drop_table("access_badges")
