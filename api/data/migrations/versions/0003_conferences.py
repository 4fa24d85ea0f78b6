"""conference mode: conferences, meeting slots, delegations, wishes and scheduled meetings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('conference',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('pivot_language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=5000), nullable=False),
    sa.Column('illustrative', sa.Boolean(), nullable=False),
    sa.Column('schedule_info', sa.JSON(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )

    op.create_table('conferenceslot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conference_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('starts_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ends_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('tables', sa.Integer(), nullable=False),
    sa.Column('interpreters', sa.JSON(), nullable=True),
    sa.Column('lost', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['conference_id'], ['conference.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conference_id', 'position', name='uq_slot_position')
    )
    with op.batch_alter_table('conferenceslot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conferenceslot_conference_id'), ['conference_id'], unique=False)

    op.create_table('delegation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conference_id', sa.Integer(), nullable=False),
    sa.Column('city_id', sa.BigInteger(), nullable=False),
    sa.Column('delegates', sa.JSON(), nullable=True),
    sa.Column('languages', sa.JSON(), nullable=True),
    sa.Column('slot_ids', sa.JSON(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('registered_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conference_id'], ['conference.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registered_by'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conference_id', 'city_id', name='uq_delegation_city')
    )
    with op.batch_alter_table('delegation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delegation_conference_id'), ['conference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delegation_city_id'), ['city_id'], unique=False)

    op.create_table('wish',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conference_id', sa.Integer(), nullable=False),
    sa.Column('from_id', sa.Integer(), nullable=False),
    sa.Column('to_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conference_id'], ['conference.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['from_id'], ['delegation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_id'], ['delegation.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('from_id', 'to_id', name='uq_wish_pair')
    )
    with op.batch_alter_table('wish', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wish_conference_id'), ['conference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_wish_from_id'), ['from_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_wish_to_id'), ['to_id'], unique=False)

    op.create_table('conferencemeeting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conference_id', sa.Integer(), nullable=False),
    sa.Column('slot_id', sa.Integer(), nullable=False),
    sa.Column('a_id', sa.Integer(), nullable=False),
    sa.Column('b_id', sa.Integer(), nullable=False),
    sa.Column('table_no', sa.Integer(), nullable=False),
    sa.Column('interpreter', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('must', sa.Boolean(), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conference_id'], ['conference.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['slot_id'], ['conferenceslot.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['a_id'], ['delegation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['b_id'], ['delegation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['match_id'], ['match.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conferencemeeting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conferencemeeting_conference_id'), ['conference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conferencemeeting_slot_id'), ['slot_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conferencemeeting_a_id'), ['a_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conferencemeeting_b_id'), ['b_id'], unique=False)


def downgrade() -> None:
    for table in ('conferencemeeting', 'wish', 'delegation', 'conferenceslot', 'conference'):
        op.drop_table(table)
