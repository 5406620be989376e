"""every pre-trade check

Revision ID: e0f1a2b3c4d5
Revises: f6120a3f5e44
Create Date: 2026-11-22 00:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ordo.kit.store

revision: str = "e0f1a2b3c4d5"
down_revision: str | None = "f6120a3f5e44"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quotes",
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("bid", ordo.kit.store.ExactDecimal(length=64), nullable=True),
        sa.Column("ask", ordo.kit.store.ExactDecimal(length=64), nullable=True),
        sa.Column("last", ordo.kit.store.ExactDecimal(length=64), nullable=False),
        sa.Column("quoted_at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("venue", "symbol", name=op.f("pk_quotes")),
    )
    op.create_table(
        "daily_activity",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("traded_notional", ordo.kit.store.ExactDecimal(length=64), nullable=False),
        sa.Column("realised_pnl", ordo.kit.store.ExactDecimal(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account", "day", name=op.f("pk_daily_activity")),
    )
    op.create_table(
        "equity_peaks",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("peak", ordo.kit.store.ExactDecimal(length=64), nullable=False),
        sa.Column("at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_equity_peaks")),
    )
    op.create_table(
        "order_rate",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("at", ordo.kit.store.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_rate")),
    )
    with op.batch_alter_table("order_rate", schema=None) as batch_op:
        batch_op.create_index("ix_order_rate_account_at", ["account", "at"], unique=False)
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inputs", sa.JSON(), nullable=True))
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index("ix_positions_instrument", ["venue", "symbol"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index("ix_positions_instrument")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("inputs")
    with op.batch_alter_table("order_rate", schema=None) as batch_op:
        batch_op.drop_index("ix_order_rate_account_at")
    op.drop_table("order_rate")
    op.drop_table("equity_peaks")
    op.drop_table("daily_activity")
    op.drop_table("quotes")
