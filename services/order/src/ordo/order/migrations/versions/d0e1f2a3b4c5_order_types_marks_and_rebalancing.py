"""order types, marks and rebalancing

Revision ID: d0e1f2a3b4c5
Revises: c0a1b2c3d4e5
Create Date: 2026-11-22 00:15:00.000000
"""

from collections.abc import Sequence

revision: str = "d0e1f2a3b4c5"
down_revision: str | None = "c0a1b2c3d4e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
