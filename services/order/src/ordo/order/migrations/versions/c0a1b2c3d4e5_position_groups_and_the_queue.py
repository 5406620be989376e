"""position groups and the waiting queue

Revision ID: c0a1b2c3d4e5
Revises: b1600048d075
Create Date: 2026-11-22 00:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ordo.kit.store

revision: str = "c0a1b2c3d4e5"
down_revision: str | None = "b1600048d075"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "position_groups",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("signal_id", sa.String(length=64), nullable=False),
        sa.Column("pyramids", sa.Integer(), nullable=False),
        sa.Column("stop_price", ordo.kit.store.ExactDecimal(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("queued_signal", sa.Text(), nullable=True),
        sa.Column("open_key", sa.String(length=300), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_position_groups")),
        sa.UniqueConstraint("open_key", name=op.f("uq_position_groups_open_key")),
    )
    with op.batch_alter_table("position_groups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_position_groups_account_status", ["account", "status"], unique=False
        )
    op.create_table(
        "group_orders",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("parent_order_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_group_orders")),
    )
    with op.batch_alter_table("group_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_orders_group_id"), ["group_id"], unique=False)
    op.create_table(
        "account_pools",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("last_closed_symbol", sa.String(length=64), nullable=True),
        sa.Column("last_closed_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_account_pools")),
    )
    op.create_table(
        "trading_states",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("changed_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_trading_states")),
    )


def downgrade() -> None:
    op.drop_table("trading_states")
    op.drop_table("account_pools")
    with op.batch_alter_table("group_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_orders_group_id"))
    op.drop_table("group_orders")
    with op.batch_alter_table("position_groups", schema=None) as batch_op:
        batch_op.drop_index("ix_position_groups_account_status")
    op.drop_table("position_groups")
