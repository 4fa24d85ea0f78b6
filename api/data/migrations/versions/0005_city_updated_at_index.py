"""index city.updated_at: the matcher's change check reads max(updated_at) before every live suggestion

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 21:00:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_city_updated_at', 'city', ['updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_city_updated_at', table_name='city')
