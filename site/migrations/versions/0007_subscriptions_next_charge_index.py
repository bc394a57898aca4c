"""subscriptions: index the billing tick's walk on (next_charge_at, id)

Revision ID: 0007_subscriptions_next_charge
Revises: 0006_ledger_payouts_exports
Create Date: 2026-11-23 16:50:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007_subscriptions_next_charge'
down_revision = '0006_ledger_payouts_exports'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriptions_next_charge_at'))
        batch_op.create_index('ix_subscriptions_next_charge', ['next_charge_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriptions_next_charge')
        batch_op.create_index(batch_op.f('ix_subscriptions_next_charge_at'), ['next_charge_at'], unique=False)
