"""i1 api keys: api_keys (I1), api_idempotency (I4)

An account's secret keys for the API, test or live; only a SHA-256 of each secret is stored. The responses to
POSTs sent with an Idempotency-Key, kept 24 hours to be replayed.

Revision ID: 0031_i1_api_keys
Revises: 0030_b3_covering_search
Create Date: 2026-12-07 02:20:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0031_i1_api_keys'
down_revision = '0030_b3_covering_search'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # every int column, as the models map it


def upgrade():
    op.create_table(
        'api_keys',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('account_id', BIGINT, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('prefix', sa.String(length=24), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=True),
        sa.Column('created_by_id', BIGINT, nullable=True),
        sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('secret_hash'),
    )
    op.create_index('ix_api_keys_account_created', 'api_keys', ['account_id', 'created_at'], unique=False)
    op.create_table(
        'api_idempotency',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('account_id', BIGINT, nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('idempotency_key', sa.String(length=255), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('api_key_id', BIGINT, nullable=False),
        sa.Column('status_code', BIGINT, nullable=True),
        sa.Column('response_body', sa.Text(), nullable=True),
        sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'mode', 'idempotency_key'),
    )
    op.create_index('ix_api_idempotency_created_at', 'api_idempotency', ['created_at'], unique=False)


def downgrade():
    op.drop_index('ix_api_idempotency_created_at', table_name='api_idempotency')
    op.drop_table('api_idempotency')
    op.drop_index('ix_api_keys_account_created', table_name='api_keys')
    op.drop_table('api_keys')
