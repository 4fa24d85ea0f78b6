"""data_version: a one-row table whose number grows with every committed write that can change a suggestions
answer (api/data/version.py), so each app process can cache whole answers and validate them with one read

The row starts at the migration's time in milliseconds rather than at 1, so a database dropped and migrated again
while an app runs does not repeat the numbers the app has already seen.

Revision ID: 0008_data_version
Revises: 0007
Create Date: 2026-11-28 23:30:00.000000
"""

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_data_version'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        'data_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(table, [{'id': 1, 'version': int(time.time() * 1000)}])


def downgrade() -> None:
    op.drop_table('data_version')
