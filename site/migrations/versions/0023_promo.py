"""promo: promo codes per account, what a payment's promo took off (Q2)

Revision ID: 0023_promo
Revises: 0022_fields
Create Date: 2026-12-06 20:20:00

"""
import sqlalchemy as sa
from alembic import op

import kassa.database

# revision identifiers, used by Alembic.
revision = '0023_promo'
down_revision = '0022_fields'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # every int column, as the models map it


def upgrade():
    op.create_table(
        'promo_codes',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('account_id', BIGINT, nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('value', BIGINT, nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('expires_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column('max_redemptions', BIGINT, nullable=True),
        sa.Column('redeemed', BIGINT, nullable=False),
        sa.Column('first_time_only', sa.Boolean(), nullable=False),
        sa.Column('link_ids', sa.JSON(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'code'),
    )
    # In place (no batch): these tables are, or refer to, `payments`, whose expression indexes a batch loses.
    op.add_column('accounts', sa.Column('promo_links', sa.Text(), server_default='', nullable=False))
    op.add_column('payments', sa.Column('promo_code', sa.String(length=32), nullable=True))
    op.add_column('payments', sa.Column('promo_discount_minor', BIGINT, server_default='0', nullable=False))
    op.create_index('ix_payments_promo_code', 'payments', ['promo_code'], unique=False)
    op.add_column('payment_items', sa.Column('promo_minor', BIGINT, server_default='0', nullable=False))


def downgrade():
    op.drop_column('payment_items', 'promo_minor')
    op.drop_index('ix_payments_promo_code', table_name='payments')
    op.drop_column('payments', 'promo_discount_minor')
    op.drop_column('payments', 'promo_code')
    op.drop_column('accounts', 'promo_links')
    op.drop_table('promo_codes')
