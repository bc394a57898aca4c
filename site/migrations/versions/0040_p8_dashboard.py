"""p8 dashboard: the revenue dashboard's kept days and what they have seen (P8)

Revision ID: 0040_p8_dashboard
Revises: 0038_w_segments
Create Date: 2026-12-07 05:40:00

"""
import sqlalchemy as sa
from alembic import op

import kassa.database

# revision identifiers, used by Alembic.
revision = '0040_p8_dashboard'
down_revision = '0038_w_segments'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_FIGURES = ('gross', 'refunded', 'fees', 'succeeded', 'failed', 'tax', 'disputed', 'dispute_fees', 'other_currencies')
_MARKS = ('since_ledger_id', 'since_payment_id', 'since_dispute_id', 'next_ledger_id', 'next_payment_id',
          'next_dispute_id')


def upgrade():
    op.create_table('revenue_days',
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *(sa.Column(name, _ID, nullable=False) for name in _FIGURES),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_revenue_days_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'mode', 'day', name=op.f('pk_revenue_days'))
    )
    op.create_table('revenue_watermarks',
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    *(sa.Column(name, _ID, nullable=False) for name in _MARKS),
    sa.Column('since_failed_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_revenue_watermarks_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_revenue_watermarks'))
    )


def downgrade():
    op.drop_table('revenue_watermarks')
    op.drop_table('revenue_days')
