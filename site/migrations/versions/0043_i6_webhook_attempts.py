"""i6 webhook attempts: every attempt of a webhook delivery is kept (time, answer or network error, duration, the
request's headers), and an endpoint's rolled secret keeps a previous secret valid until a chosen time

Revision ID: 0043_i6_webhook_attempts
Revises: 0042_i2_api_checkout_exports
Create Date: 2026-12-07 08:20:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0043_i6_webhook_attempts'
down_revision = '0042_i2_api_checkout_exports'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('webhook_attempts',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('delivery_id', _ID, nullable=False),
    sa.Column('number', _ID, nullable=False),
    sa.Column('resend', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('attempted_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('request_headers', sa.JSON(), nullable=False),
    sa.Column('response_status', _ID, nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', _ID, nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_webhook_attempts_account_id_accounts')),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'],
                            name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts')),
    )
    op.create_index('ix_webhook_attempts_delivery', 'webhook_attempts', ['delivery_id', 'id'], unique=False)
    op.add_column('webhook_endpoints', sa.Column('previous_secret_encrypted', sa.Text(), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('previous_secret_expires_at',
                                                 kassa.database.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.drop_column('previous_secret_expires_at')
        batch.drop_column('previous_secret_encrypted')
    op.drop_index('ix_webhook_attempts_delivery', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
