"""payouts.processor_ref: payouts Stripe made, listed by Kassa (K11); Kassa's own daily payout stays one a day

Revision ID: 0014_stripe_payouts
Revises: 0013_stripe_connections
Create Date: 2026-12-06 16:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014_stripe_payouts'
down_revision = '0013_stripe_connections'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processor_ref', sa.String(length=120), nullable=True))
        # Stripe may pay out several times a day (currencies, instant payouts): one a day holds for the payouts
        # Kassa makes itself; each of Stripe's is recorded once by its id.
        batch_op.drop_constraint('uq_payouts_account_id_mode_payout_date', type_='unique')
        batch_op.create_index('uq_payouts_daily', ['account_id', 'mode', 'payout_date'], unique=True,
                              sqlite_where=sa.text('processor_ref IS NULL'),
                              postgresql_where=sa.text('processor_ref IS NULL'))
        batch_op.create_unique_constraint(batch_op.f('uq_payouts_account_id_processor_ref'),
                                          ['account_id', 'processor_ref'])


def downgrade():
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_payouts_account_id_processor_ref'), type_='unique')
        batch_op.drop_index('uq_payouts_daily')
        batch_op.create_unique_constraint('uq_payouts_account_id_mode_payout_date',
                                          ['account_id', 'mode', 'payout_date'])
        batch_op.drop_column('processor_ref')
