"""accounts.test_processor: test mode runs on the built-in sandbox or on Stripe test mode (K12)

Revision ID: 0015_test_processor
Revises: 0014_stripe_payouts
Create Date: 2026-12-06 15:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015_test_processor'
down_revision = '0014_stripe_payouts'
branch_labels = None
depends_on = None


def upgrade():
    # Every existing account keeps testing on the sandbox, as before.
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('test_processor', sa.String(length=16), server_default='sandbox',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('test_processor')
