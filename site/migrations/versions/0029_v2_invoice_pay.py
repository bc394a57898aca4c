"""v2 invoice pay: invoices sent by email and paid through Kassa's checkout (V2)

checkout_sessions.link_id becomes optional and checkout_sessions.invoice_id is new: an invoice's pay page opens a
checkout session of its invoice (no link). payments.invoice_id names the merchant's invoice a payment pays.
invoices.sent_at: when the invoice was last emailed to its customer; invoices.allow_partial: whether the customer may
pay part of the amount due; invoices.reminded_before_at / reminded_after_at: the reminders that went, and
accounts.invoice_reminder_days_before / _after: when they go (0: never, the default).

Revision ID: 0029_v2_invoice_pay
Revises: 0028_g4_request_id
Create Date: 2026-12-07 02:30:00

"""
import warnings
from contextlib import contextmanager

import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0029_v2_invoice_pay'
down_revision = '0028_g4_request_id'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


@contextmanager
def _sessions_batch():
    """SQLite can't drop NOT NULL in place: checkout_sessions is rebuilt there (PostgreSQL alters in place). The
    batch reflects the tables it refers to, payments among them, whose expression indexes SQLite can't reflect."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
            yield batch_op


def upgrade():
    with _sessions_batch() as batch_op:
        batch_op.alter_column('link_id', existing_type=BIGINT, nullable=True)
        batch_op.add_column(sa.Column('invoice_id', BIGINT, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_checkout_sessions_invoice_id_invoices'), 'invoices',
                                    ['invoice_id'], ['id'], use_alter=True)
        batch_op.create_index(batch_op.f('ix_checkout_sessions_invoice_id'), ['invoice_id'], unique=False)
    # payments in place (never a batch): a nullable column, its foreign key and index. SQLite adds a column's
    # foreign key only inline (REFERENCES), which Alembic's add_column doesn't write: said in SQL there.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE payments ADD COLUMN invoice_id INTEGER REFERENCES invoices (id)")
    else:
        op.add_column('payments', sa.Column('invoice_id', BIGINT, nullable=True))
        op.create_foreign_key(op.f('fk_payments_invoice_id_invoices'), 'payments', 'invoices', ['invoice_id'],
                              ['id'])
    op.create_index(op.f('ix_payments_invoice_id'), 'payments', ['invoice_id'], unique=False)
    op.add_column('invoices', sa.Column('sent_at', kassa.database.UTCDateTime(timezone=True), nullable=True))
    op.add_column('invoices', sa.Column('allow_partial', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('invoices', sa.Column('reminded_before_at', kassa.database.UTCDateTime(timezone=True), nullable=True))
    op.add_column('invoices', sa.Column('reminded_after_at', kassa.database.UTCDateTime(timezone=True), nullable=True))
    op.add_column('accounts', sa.Column('invoice_reminder_days_before', BIGINT, server_default='0', nullable=False))
    op.add_column('accounts', sa.Column('invoice_reminder_days_after', BIGINT, server_default='0', nullable=False))


def downgrade():
    op.drop_column('accounts', 'invoice_reminder_days_after')
    op.drop_column('accounts', 'invoice_reminder_days_before')
    op.drop_column('invoices', 'reminded_after_at')
    op.drop_column('invoices', 'reminded_before_at')
    op.drop_column('invoices', 'allow_partial')
    op.drop_column('invoices', 'sent_at')
    op.drop_index(op.f('ix_payments_invoice_id'), table_name='payments')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_payments_invoice_id_invoices'), 'payments', type_='foreignkey')
    op.drop_column('payments', 'invoice_id')
    op.execute("DELETE FROM checkout_sessions WHERE link_id IS NULL")
    with _sessions_batch() as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkout_sessions_invoice_id'))
        batch_op.drop_constraint(batch_op.f('fk_checkout_sessions_invoice_id_invoices'), type_='foreignkey')
        batch_op.drop_column('invoice_id')
        batch_op.alter_column('link_id', existing_type=BIGINT, nullable=False)
