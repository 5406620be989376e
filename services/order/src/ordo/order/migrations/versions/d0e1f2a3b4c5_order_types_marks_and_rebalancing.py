"""order types, marks and rebalancing

Revision ID: d0e1f2a3b4c5
Revises: c0a1b2c3d4e5
Create Date: 2026-11-22 00:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ordo.kit.store

revision: str = "d0e1f2a3b4c5"
down_revision: str | None = "c0a1b2c3d4e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trailing_amount", ordo.kit.store.ExactDecimal(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("trailing_percent", ordo.kit.store.ExactDecimal(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("expire_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=True)
        )
        # Every order placed before this revision went to its venue as it was: none is held.
        batch_op.add_column(
            sa.Column("emulated", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("released_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_orders_expire_at", ["expire_at"], unique=False)

    op.create_table(
        "marks",
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("price", ordo.kit.store.ExactDecimal(length=64), nullable=False),
        sa.Column("quoted_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("venue", "symbol", name=op.f("pk_marks")),
    )
    op.create_table(
        "order_watches",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("placed_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.Column("best_price", ordo.kit.store.ExactDecimal(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_watches")),
    )
    with op.batch_alter_table("order_watches", schema=None) as batch_op:
        batch_op.create_index("ix_order_watches_market", ["venue", "symbol"], unique=False)

    op.create_table(
        "rebalances",
        sa.Column("rebalance_id", sa.String(length=36), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("reserve", ordo.kit.store.ExactDecimal(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rebalance_id", name=op.f("pk_rebalances")),
    )


def downgrade() -> None:
    op.drop_table("rebalances")
    with op.batch_alter_table("order_watches", schema=None) as batch_op:
        batch_op.drop_index("ix_order_watches_market")

    op.drop_table("order_watches")
    op.drop_table("marks")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_expire_at")
        batch_op.drop_column("released_at")
        batch_op.drop_column("emulated")
        batch_op.drop_column("expire_at")
        batch_op.drop_column("trailing_percent")
        batch_op.drop_column("trailing_amount")
