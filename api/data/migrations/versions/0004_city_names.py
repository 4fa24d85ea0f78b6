"""city names: every name a city is searched by (GeoNames name, alternate names, word suffixes), folded keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_TYPE = sa.String(200).with_variant(sa.String(200, collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table('cityname',
    sa.Column('city_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('key', KEY_TYPE, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.SmallInteger(), nullable=False),
    sa.Column('script', sa.String(length=4), nullable=False),
    sa.ForeignKeyConstraint(['city_id'], ['city.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('city_id', 'key'),
    sqlite_with_rowid=False,
    )
    op.create_index('ix_cityname_key', 'cityname', ['key', 'kind', 'city_id'], unique=False)
    op.drop_index('ix_city_search_name', table_name='city')  # search goes through cityname now
    # A database seeded before this revision: index the cities' own names now, so search works at once
    # (`twinning seed` adds the alternate names).
    from api.data.seeding import index_names_of_existing_cities

    index_names_of_existing_cities(op.get_bind())


def downgrade() -> None:
    op.create_index('ix_city_search_name', 'city', ['search_name'], unique=False)
    op.drop_index('ix_cityname_key', table_name='cityname')
    op.drop_table('cityname')
