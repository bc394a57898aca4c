"""v1 invoices: invoices a merchant writes (V1), beside the per-payment invoices of R5

invoices.number and invoices.payment_id become optional (a draft has no number yet; a merchant's invoice has no
payment of its own); invoices gains customer (contact_id, company_id), issue and due dates, notes, terms, the
amount paid so far, finalize/void times and the void reason, and an (account_id, status) index for the list.
New table invoice_lines. Existing invoices stay as they were: status "paid", rendered from their payment, no lines
(a per-payment invoice's line is its payment's order); their amount_paid_minor is set to their amount.

Revision ID: 0027_v1_invoices
Revises: 0026_trial
Create Date: 2026-12-06 23:45:00

"""
import warnings
from contextlib import contextmanager

import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0027_v1_invoices'
down_revision = '0026_trial'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


@contextmanager
def _invoices_batch():
    """The batch reflects invoices and the tables it refers to; SQLite can't reflect payments' expression indexes
    (B3 search), which SQLAlchemy warns about. The rebuilt table is invoices alone, so those indexes don't matter."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table('invoices', schema=None) as batch_op:
            yield batch_op


def upgrade():
    # A batch: SQLite can't drop NOT NULL or add a foreign key in place. No table refers to invoices, so
    # rebuilding it (on SQLite; PostgreSQL alters in place) touches nothing else; its rows are copied over.
    with _invoices_batch() as batch_op:
        batch_op.alter_column('number', existing_type=BIGINT, nullable=True)
        batch_op.alter_column('payment_id', existing_type=BIGINT, nullable=True)
        batch_op.add_column(sa.Column('contact_id', BIGINT, nullable=True))
        batch_op.add_column(sa.Column('company_id', BIGINT, nullable=True))
        batch_op.add_column(sa.Column('issue_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('due_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('notes', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('terms', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('amount_paid_minor', BIGINT, nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('finalized_at', kassa.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('voided_at', kassa.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('void_reason', sa.String(length=500), nullable=False, server_default=''))
        batch_op.create_foreign_key(batch_op.f('fk_invoices_contact_id_contacts'), 'contacts', ['contact_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_invoices_company_id_companies'), 'companies', ['company_id'], ['id'])
        batch_op.create_index('ix_invoices_account_status', ['account_id', 'status'], unique=False)
    # Per-payment invoices were paid in full the moment they were made (R5).
    op.execute("UPDATE invoices SET amount_paid_minor = amount_minor, finalized_at = issued_at WHERE status = 'paid'")

    op.create_table('invoice_lines',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('invoice_id', BIGINT, nullable=False),
    sa.Column('position', BIGINT, nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('quantity', BIGINT, nullable=False),
    sa.Column('unit_amount_minor', BIGINT, nullable=False),
    sa.Column('product_id', BIGINT, nullable=True),
    sa.Column('discount_type', sa.String(length=8), nullable=False),
    sa.Column('discount_value', BIGINT, nullable=False),
    sa.Column('amount_minor', BIGINT, nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_invoice_lines_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines'))
    )
    op.create_index(op.f('ix_invoice_lines_invoice_id'), 'invoice_lines', ['invoice_id'], unique=False)


def downgrade():
    # Merchants' own invoices can't live in the old schema (no number, no payment): they go with their lines.
    op.drop_index(op.f('ix_invoice_lines_invoice_id'), table_name='invoice_lines')
    op.drop_table('invoice_lines')
    op.execute("DELETE FROM invoices WHERE payment_id IS NULL OR number IS NULL")
    with _invoices_batch() as batch_op:
        batch_op.drop_index('ix_invoices_account_status')
        batch_op.drop_constraint(batch_op.f('fk_invoices_company_id_companies'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_invoices_contact_id_contacts'), type_='foreignkey')
        for column in ('void_reason', 'voided_at', 'finalized_at', 'amount_paid_minor', 'terms', 'notes',
                       'due_date', 'issue_date', 'company_id', 'contact_id'):
            batch_op.drop_column(column)
        batch_op.alter_column('payment_id', existing_type=BIGINT, nullable=False)
        batch_op.alter_column('number', existing_type=BIGINT, nullable=False)
