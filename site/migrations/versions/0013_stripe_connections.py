"""stripe_connections: a merchant account's Stripe keys, the secret encrypted at rest (K5)

Revision ID: 0013_stripe_connections
Revises: 0012_crash
Create Date: 2026-12-06 13:30:00

"""
import sqlalchemy as sa
from alembic import op

import kassa.database

# revision identifiers, used by Alembic.
revision = '0013_stripe_connections'
down_revision = '0012_crash'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'stripe_connections',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('mode', sa.String(length=4), nullable=False),
        sa.Column('secret_key_encrypted', sa.Text(), nullable=False),
        sa.Column('secret_key_last4', sa.String(length=4), nullable=False),
        sa.Column('publishable_key', sa.String(length=255), nullable=False),
        sa.Column('stripe_account_id', sa.String(length=64), nullable=False),
        sa.Column('stripe_account_name', sa.String(length=200), nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('default_currency', sa.String(length=3), nullable=False),
        sa.Column('connected_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('connected_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('disconnected_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column('disconnected_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.CheckConstraint("mode IN ('live', 'test')", name=op.f('ck_stripe_connections_mode')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_stripe_connections_account_id_accounts')),
        sa.ForeignKeyConstraint(['connected_by_id'], ['users.id'],
                                name=op.f('fk_stripe_connections_connected_by_id_users')),
        sa.ForeignKeyConstraint(['disconnected_by_id'], ['users.id'],
                                name=op.f('fk_stripe_connections_disconnected_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_connections')),
    )
    with op.batch_alter_table('stripe_connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stripe_connections_account_id'), ['account_id'], unique=False)
        # At most one active connection per account and mode; disconnected rows stay as history.
        batch_op.create_index('uq_stripe_connections_active', ['account_id', 'mode'], unique=True,
                              sqlite_where=sa.text('disconnected_at IS NULL'),
                              postgresql_where=sa.text('disconnected_at IS NULL'))


def downgrade():
    with op.batch_alter_table('stripe_connections', schema=None) as batch_op:
        batch_op.drop_index('uq_stripe_connections_active')
        batch_op.drop_index(batch_op.f('ix_stripe_connections_account_id'))
    op.drop_table('stripe_connections')
