"""audit, trading state and offsets

Revision ID: f0a1b2c3d4e6
Revises: e0f1a2b3c4d5
Create Date: 2026-11-22 00:15:00.000000
"""

from collections.abc import Sequence

revision: str = "f0a1b2c3d4e6"
down_revision: str | None = "e0f1a2b3c4d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
