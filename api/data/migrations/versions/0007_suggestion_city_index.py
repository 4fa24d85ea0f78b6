"""suggestions by city: an index (city_id, score_set_id), so the newest complete score set covering a city is found
by an index seek instead of a scan of every stored suggestion (~20 rows per active city per set)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 21:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_suggestion_city_set', 'suggestion', ['city_id', 'score_set_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_suggestion_city_set', table_name='suggestion')
