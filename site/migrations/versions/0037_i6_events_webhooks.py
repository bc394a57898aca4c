"""i6 events webhooks: the account event feed (W6, I6), webhook endpoints and their deliveries (I6)

Revision ID: 0037_i6_events_webhooks
Revises: 0036_v1_credit_notes
Create Date: 2026-12-07 05:30:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0037_i6_events_webhooks'
down_revision = '0036_v1_credit_notes'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('account_events',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('object_id', _ID, nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('occurred_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_events_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_events'))
    )
    op.create_index('ix_account_events_account_id', 'account_events', ['account_id', 'id'], unique=False)
    op.create_table('webhook_endpoints',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=20), nullable=True),
    sa.Column('disabled_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cursor', _ID, nullable=False),
    sa.Column('consecutive_failures', _ID, nullable=False),
    sa.Column('failing_since', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', _ID, nullable=True),
    sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_webhook_endpoints_account_id_accounts')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_webhook_endpoints_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_index('ix_webhook_endpoints_account', 'webhook_endpoints', ['account_id'], unique=False)
    op.create_table('webhook_deliveries',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('endpoint_id', _ID, nullable=False),
    sa.Column('event_id', _ID, nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', _ID, nullable=False),
    sa.Column('next_attempt_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('response_status', _ID, nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('duration_ms', _ID, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_webhook_deliveries_account_id_accounts')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'],
                            name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['account_events.id'],
                            name=op.f('fk_webhook_deliveries_event_id_account_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_webhook_deliveries_endpoint_id_event_id'))
    )
    op.create_index('ix_webhook_deliveries_endpoint', 'webhook_deliveries', ['endpoint_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_webhook_deliveries_endpoint', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_webhook_endpoints_account', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
    op.drop_index('ix_account_events_account_id', table_name='account_events')
    op.drop_table('account_events')
