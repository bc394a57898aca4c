"""g2 periodic claims: one tick per period across all workers (G2)

New table periodic_claims: per periodic job, the start of the latest period a worker took, by whom and when.

Revision ID: 0032_g2_periodic_claims
Revises: 0031_i1_api_keys
Create Date: 2026-12-07 03:00:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0032_g2_periodic_claims'
down_revision = '0031_i1_api_keys'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('periodic_claims',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('period_start', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_periodic_claims'))
    )


def downgrade():
    op.drop_table('periodic_claims')
