"""v1 credit notes and tax on invoice lines (V1, V7)

invoice_lines: the tax rate chosen for the line (tax_rate_id, no foreign key: a snapshot of the rate is kept,
so archiving or editing the rate never changes a finalized invoice): its name, percentage, inclusive flag and
the line's tax. invoices.tax_minor: the invoice's tax in total. credit_notes: one per refund of an invoice's
payment, numbered from the account's own credit note series (gap-free, counters "credit_note").

Revision ID: 0036_v1_credit_notes
Revises: 0035_v4_quotes
Create Date: 2026-12-07 05:20:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0036_v1_credit_notes'
down_revision = '0035_v4_quotes'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.add_column('invoice_lines', sa.Column('tax_rate_id', BIGINT, nullable=True))
    op.add_column('invoice_lines', sa.Column('tax_name', sa.String(length=100), nullable=False, server_default=''))
    op.add_column('invoice_lines', sa.Column('tax_percentage_bp', BIGINT, nullable=False, server_default='0'))
    op.add_column('invoice_lines', sa.Column('tax_inclusive', sa.Boolean(), nullable=False,
                                             server_default=sa.false()))
    op.add_column('invoice_lines', sa.Column('tax_minor', BIGINT, nullable=False, server_default='0'))
    op.add_column('invoices', sa.Column('tax_minor', BIGINT, nullable=False, server_default='0'))
    op.create_table('credit_notes',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('account_id', BIGINT, nullable=False),
    sa.Column('number', BIGINT, nullable=False),
    sa.Column('invoice_id', BIGINT, nullable=False),
    sa.Column('refund_id', BIGINT, nullable=False),
    sa.Column('payment_id', BIGINT, nullable=False),
    sa.Column('amount_minor', BIGINT, nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('issued_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_credit_notes_account_id_accounts')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_credit_notes_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_credit_notes_refund_id_refunds')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_credit_notes_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_notes')),
    sa.UniqueConstraint('account_id', 'number', name=op.f('uq_credit_notes_account_id_number')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_credit_notes_refund_id')),
    )
    op.create_index(op.f('ix_credit_notes_invoice_id'), 'credit_notes', ['invoice_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_credit_notes_invoice_id'), table_name='credit_notes')
    op.drop_table('credit_notes')
    op.drop_column('invoices', 'tax_minor')
    for name in ('tax_minor', 'tax_inclusive', 'tax_percentage_bp', 'tax_name', 'tax_rate_id'):
        op.drop_column('invoice_lines', name)
