"""tax: tax rates per account, the merchant's VAT number, "Collect tax" on links, tax on payments and
subscriptions (Q6)

Revision ID: 0024_tax
Revises: 0023_promo
Create Date: 2026-12-06 20:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024_tax'
down_revision = '0023_promo'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # every int column, as the models map it
UTC = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        'tax_rates',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('account_id', BIGINT, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('percentage_bp', BIGINT, nullable=False),
        sa.Column('inclusive', sa.Boolean(), nullable=False),
        sa.Column('countries', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_tax_rates_account_id', 'tax_rates', ['account_id'], unique=False)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vat_number', sa.String(length=20), server_default='', nullable=False))
    with op.batch_alter_table('payment_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collect_tax', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Not batches: payments has expression indexes a batch rebuild would lose (B3); subscriptions refers to it.
    op.add_column('payments', sa.Column('tax_minor', BIGINT, server_default='0', nullable=False))
    op.add_column('payments', sa.Column('buyer_country', sa.String(length=2), server_default='', nullable=False))
    op.add_column('payments', sa.Column('buyer_vat_id', sa.String(length=20), server_default='', nullable=False))
    op.add_column('payments', sa.Column('reverse_charge', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('payments', sa.Column('tax_details', sa.JSON(), nullable=True))
    op.add_column('subscriptions', sa.Column('tax_minor', BIGINT, server_default='0', nullable=False))
    op.add_column('subscriptions', sa.Column('tax_details', sa.JSON(), nullable=True))


def downgrade():
    # In place (SQLite ≥ 3.35), never a batch: payments' expression indexes (B3).
    for name in ('tax_details', 'tax_minor'):
        op.drop_column('subscriptions', name)
    for name in ('tax_details', 'reverse_charge', 'buyer_vat_id', 'buyer_country', 'tax_minor'):
        op.drop_column('payments', name)
    with op.batch_alter_table('payment_links', schema=None) as batch_op:
        batch_op.drop_column('collect_tax')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('vat_number')
    op.drop_index('ix_tax_rates_account_id', table_name='tax_rates')
    op.drop_table('tax_rates')
