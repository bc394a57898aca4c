"""b9 subscription clock: a test clock per test subscription instead of one per account (B9)

The account's offset moves onto each of that account's test subscriptions (they all ran on it), then the
account column goes: nothing else follows a test clock any more (test payments, reports, home figures,
sandbox events and dispute deadlines run on real time).

Revision ID: 0021_b9_subscription_clock
Revises: 0020_qprice
Create Date: 2026-12-06 17:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021_b9_subscription_clock'
down_revision = '0020_qprice'
branch_labels = None
depends_on = None

OFFSET = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clock_offset_seconds', OFFSET, server_default='0', nullable=False))
        batch_op.create_index('ix_subscriptions_clock_offset', ['clock_offset_seconds'], unique=False)
    op.execute(
        "UPDATE subscriptions SET clock_offset_seconds = COALESCE((SELECT accounts.clock_offset_seconds"
        " FROM accounts WHERE accounts.id = subscriptions.account_id), 0) WHERE mode = 'test'")
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('clock_offset_seconds')


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clock_offset_seconds', OFFSET, server_default='0', nullable=False))
    # Back to one clock per account: the furthest any of its test subscriptions had gone.
    op.execute(
        "UPDATE accounts SET clock_offset_seconds = COALESCE((SELECT MAX(subscriptions.clock_offset_seconds)"
        " FROM subscriptions WHERE subscriptions.account_id = accounts.id AND subscriptions.mode = 'test'), 0)")
    # Not a batch: rebuilding subscriptions on SQLite would reflect every table it refers to (payments has
    # expression indexes reflection skips); SQLite 3.35+ drops a plain column in place.
    op.drop_index('ix_subscriptions_clock_offset', table_name='subscriptions')
    op.drop_column('subscriptions', 'clock_offset_seconds')
