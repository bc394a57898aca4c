"""trial: free trials on a link's recurring items (Q9)

payment_links.trial_days (a link-level setting, as Stripe's subscription_data.trial_period_days);
subscriptions.trial_ends_at and subscriptions.started_by_checkout_id (the checkout that started a subscription with
nothing to pay that day: it has no first payment).

Revision ID: 0026_trial
Revises: 0025_limits
Create Date: 2026-12-06 20:30:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0026_trial'
down_revision = '0025_limits'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.add_column('payment_links', sa.Column('trial_days', BIGINT, nullable=True))
    op.add_column('subscriptions', sa.Column('trial_ends_at', kassa.database.UTCDateTime(timezone=True), nullable=True))
    # A plain id (no foreign key: SQLite can't add one in place, and a batch would rebuild the table).
    op.add_column('subscriptions', sa.Column('started_by_checkout_id', BIGINT, nullable=True))
    op.create_index('ix_subscriptions_started_by_checkout_id', 'subscriptions', ['started_by_checkout_id'], unique=False)


def downgrade():
    # In place, never a batch: subscriptions and payment_links are referred to by payments (see 0021).
    op.drop_index('ix_subscriptions_started_by_checkout_id', table_name='subscriptions')
    op.drop_column('subscriptions', 'started_by_checkout_id')
    op.drop_column('subscriptions', 'trial_ends_at')
    op.drop_column('payment_links', 'trial_days')
