"""every pre-trade check

Revision ID: e0f1a2b3c4d5
Revises: f6120a3f5e44
Create Date: 2026-11-22 00:15:00.000000
"""

from collections.abc import Sequence

revision: str = "e0f1a2b3c4d5"
down_revision: str | None = "f6120a3f5e44"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
