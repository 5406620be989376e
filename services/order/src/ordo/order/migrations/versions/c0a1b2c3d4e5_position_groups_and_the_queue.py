"""position groups and the waiting queue

Revision ID: c0a1b2c3d4e5
Revises: b1600048d075
Create Date: 2026-11-22 00:15:00.000000
"""

from collections.abc import Sequence

revision: str = "c0a1b2c3d4e5"
down_revision: str | None = "b1600048d075"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
