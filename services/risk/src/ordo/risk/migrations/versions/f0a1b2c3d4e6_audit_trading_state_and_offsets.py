"""audit, trading state and offsets

Revision ID: f0a1b2c3d4e6
Revises: e0f1a2b3c4d5
Create Date: 2026-11-22 00:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ordo.kit.store

revision: str = "f0a1b2c3d4e6"
down_revision: str | None = "e0f1a2b3c4d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("decided_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "decision_id", name=op.f("pk_decision_orders")),
    )
    with op.batch_alter_table("decision_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_decision_orders_decided_at"), ["decided_at"], unique=False
        )

    op.create_table(
        "limit_overrides",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("updated_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_limit_overrides")),
    )

    op.create_table(
        "limit_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_changes")),
    )
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.create_index("ix_limit_changes_scope_at", ["scope", "at"], unique=False)

    op.create_table(
        "offsets",
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("loser", sa.JSON(), nullable=False),
        sa.Column("winners", sa.JSON(), nullable=False),
        sa.Column("loss", ordo.kit.store.ExactDecimal(length=64), nullable=False),
        sa.Column("covered", ordo.kit.store.ExactDecimal(length=64), nullable=False),
        sa.Column("created_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", name=op.f("pk_offsets")),
    )
    with op.batch_alter_table("offsets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_offsets_account_created_at", ["account", "created_at"], unique=False
        )

    op.create_table(
        "breaches",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("episode", sa.String(length=32), nullable=False),
        sa.Column("since", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "cause", name=op.f("pk_breaches")),
    )


def downgrade() -> None:
    op.drop_table("breaches")
    with op.batch_alter_table("offsets", schema=None) as batch_op:
        batch_op.drop_index("ix_offsets_account_created_at")
    op.drop_table("offsets")
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_limit_changes_scope_at")
    op.drop_table("limit_changes")
    op.drop_table("limit_overrides")
    with op.batch_alter_table("decision_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_orders_decided_at"))
    op.drop_table("decision_orders")
