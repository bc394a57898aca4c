"""v4 quotes: quotes a merchant sends, accepted and paid on their public page (V4)

New tables quotes and quote_lines (one-time and recurring lines); checkout_sessions.quote_id: the checkout an
accepted quote opens (no link), whose payment has source "quote".

Revision ID: 0035_v4_quotes
Revises: 0034_v3_manual_payments
Create Date: 2026-12-07 05:15:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0035_v4_quotes'
down_revision = '0034_v3_manual_payments'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = kassa.database.UTCDateTime(timezone=True)


def upgrade():
    op.create_table('quotes',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('account_id', BIGINT, nullable=False),
    sa.Column('number', BIGINT, nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', BIGINT, nullable=False),
    sa.Column('contact_id', BIGINT, nullable=True),
    sa.Column('company_id', BIGINT, nullable=True),
    sa.Column('issue_date', sa.Date(), nullable=True),
    sa.Column('expiry_date', sa.Date(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('terms', sa.Text(), nullable=False),
    sa.Column('deal_id', BIGINT, nullable=True),
    sa.Column('accept_stage_id', BIGINT, nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('finalized_at', WHEN, nullable=True),
    sa.Column('sent_at', WHEN, nullable=True),
    sa.Column('accepted_at', WHEN, nullable=True),
    sa.Column('accepted_name', sa.String(length=200), nullable=False),
    sa.Column('accepted_ip', sa.String(length=45), nullable=True),
    sa.Column('declined_at', WHEN, nullable=True),
    sa.Column('voided_at', WHEN, nullable=True),
    sa.Column('paid_at', WHEN, nullable=True),
    sa.Column('payment_id', BIGINT, nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_quotes_account_id_accounts')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_quotes_contact_id_contacts')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_quotes_company_id_companies')),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_quotes_deal_id_deals')),
    sa.ForeignKeyConstraint(['accept_stage_id'], ['stages.id'], name=op.f('fk_quotes_accept_stage_id_stages')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_quotes_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quotes')),
    sa.UniqueConstraint('account_id', 'number', name=op.f('uq_quotes_account_id_number')),
    )
    op.create_index('ix_quotes_account_status', 'quotes', ['account_id', 'status'], unique=False)
    op.create_table('quote_lines',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('quote_id', BIGINT, nullable=False),
    sa.Column('position', BIGINT, nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('quantity', BIGINT, nullable=False),
    sa.Column('unit_amount_minor', BIGINT, nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('product_id', BIGINT, nullable=True),
    sa.Column('discount_type', sa.String(length=8), nullable=False),
    sa.Column('discount_value', BIGINT, nullable=False),
    sa.Column('amount_minor', BIGINT, nullable=False),
    sa.ForeignKeyConstraint(['quote_id'], ['quotes.id'], name=op.f('fk_quote_lines_quote_id_quotes')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_quote_lines_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote_lines'))
    )
    op.create_index(op.f('ix_quote_lines_quote_id'), 'quote_lines', ['quote_id'], unique=False)
    # checkout_sessions in place: a nullable column. SQLite adds a column's foreign key only inline (REFERENCES).
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE checkout_sessions ADD COLUMN quote_id INTEGER REFERENCES quotes (id)")
    else:
        op.add_column('checkout_sessions', sa.Column('quote_id', BIGINT, nullable=True))
        op.create_foreign_key(op.f('fk_checkout_sessions_quote_id_quotes'), 'checkout_sessions', 'quotes',
                              ['quote_id'], ['id'])
    op.create_index(op.f('ix_checkout_sessions_quote_id'), 'checkout_sessions', ['quote_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_checkout_sessions_quote_id'), table_name='checkout_sessions')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_checkout_sessions_quote_id_quotes'), 'checkout_sessions', type_='foreignkey')
    op.execute("DELETE FROM checkout_sessions WHERE quote_id IS NOT NULL")
    op.drop_column('checkout_sessions', 'quote_id')
    op.drop_index(op.f('ix_quote_lines_quote_id'), table_name='quote_lines')
    op.drop_table('quote_lines')
    op.drop_index('ix_quotes_account_status', table_name='quotes')
    op.drop_table('quotes')
