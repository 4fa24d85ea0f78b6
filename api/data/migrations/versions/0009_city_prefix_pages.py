"""city prefix pages: the stored first page of every short search that many places match (api/data/prefixes.py),
so that a search for ``s`` or ``sa`` reads one row instead of ranking tens of thousands of cities

Built here from the names already indexed (~15 s for cities1000 on SQLite); the seed rebuilds it after loading.

Revision ID: 0009_city_prefix_pages
Revises: 0008_data_version
Create Date: 2026-11-29 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_city_prefix_pages'
down_revision: str | None = '0008_data_version'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_TYPE = sa.String(200).with_variant(sa.String(200, collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'cityprefix',
        sa.Column('prefix', KEY_TYPE, nullable=False),
        sa.Column('total', sa.BigInteger(), nullable=False),
        sa.Column('city_ids', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('prefix'),
    )
    from api.data.prefixes import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table('cityprefix')
