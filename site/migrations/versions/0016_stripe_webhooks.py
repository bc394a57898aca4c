"""stripe_events and the webhook columns of stripe_connections: Stripe webhooks and the events poll (K7)

Revision ID: 0016_stripe_webhooks
Revises: 0015_test_processor
Create Date: 2026-12-07 10:00:00

"""
import sqlalchemy as sa
from alembic import op

import kassa.database

# revision identifiers, used by Alembic.
revision = '0016_stripe_webhooks'
down_revision = '0015_test_processor'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    with op.batch_alter_table('stripe_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_endpoint_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('webhook_secret_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('events_seen_until', kassa.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('events_polled_at', kassa.database.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        'stripe_events',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('account_id', BIGINT, nullable=False),
        sa.Column('connection_id', BIGINT, nullable=False),
        sa.Column('event_id', sa.String(length=64), nullable=False),
        sa.Column('type', sa.String(length=64), nullable=False),
        sa.Column('object_id', sa.String(length=120), nullable=False),
        sa.Column('created', kassa.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('received_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('done_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_stripe_events_account_id_accounts')),
        sa.ForeignKeyConstraint(['connection_id'], ['stripe_connections.id'],
                                name=op.f('fk_stripe_events_connection_id_stripe_connections')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_events')),
        sa.UniqueConstraint('account_id', 'event_id', name=op.f('uq_stripe_events_account_id_event_id')),
    )
    with op.batch_alter_table('stripe_events', schema=None) as batch_op:
        batch_op.create_index('ix_stripe_events_pending', ['connection_id', 'done_at', 'created'], unique=False)


def downgrade():
    with op.batch_alter_table('stripe_events', schema=None) as batch_op:
        batch_op.drop_index('ix_stripe_events_pending')
    op.drop_table('stripe_events')
    with op.batch_alter_table('stripe_connections', schema=None) as batch_op:
        batch_op.drop_column('events_polled_at')
        batch_op.drop_column('events_seen_until')
        batch_op.drop_column('webhook_secret_encrypted')
        batch_op.drop_column('webhook_endpoint_id')
