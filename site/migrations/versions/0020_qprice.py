"""qprice: line discounts, adjustable quantities and pay what you want (Q1, Q3, Q4)

Revision ID: 0020_qprice
Revises: 0019_b2b8
Create Date: 2026-12-06 19:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020_qprice'
down_revision = '0019_b2b8'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # every int column, as the models map it

DISCOUNT = [
    ('discount_type', sa.String(length=8), ''),
    ('discount_value', BIGINT, '0'),
]


def upgrade():
    with op.batch_alter_table('link_items', schema=None) as batch_op:
        for name, type_, default in DISCOUNT:
            batch_op.add_column(sa.Column(name, type_, server_default=default, nullable=False))
        batch_op.add_column(sa.Column('quantity_adjustable', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('quantity_min', BIGINT, server_default='1', nullable=False))
        batch_op.add_column(sa.Column('quantity_max', BIGINT, server_default='1', nullable=False))
        batch_op.add_column(sa.Column('custom_amount', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('amount_min_minor', BIGINT, nullable=True))
        batch_op.add_column(sa.Column('amount_max_minor', BIGINT, nullable=True))
    for table in ('payment_items', 'subscription_items'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, type_, default in DISCOUNT:
                batch_op.add_column(sa.Column(name, type_, server_default=default, nullable=False))
            batch_op.add_column(sa.Column('discount_minor', BIGINT, server_default='0', nullable=False))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gross_minor', BIGINT, nullable=True))
        batch_op.add_column(sa.Column('discount_minor', BIGINT, server_default='0', nullable=False))
        batch_op.add_column(sa.Column('net_minor', BIGINT, nullable=True))
    # Payments from before: gross = net = the amount charged, no discount (NULL reads the same way).


def downgrade():
    # A plain DROP COLUMN (SQLite ≥ 3.35): a batch would rebuild `payments` and lose its expression indexes (B3).
    for name in ('net_minor', 'discount_minor', 'gross_minor'):
        op.drop_column('payments', name)
    # In place too: a batch reflects the tables these refer to, `payments` among them, whose expression indexes
    # SQLAlchemy can't reflect.
    for table in ('subscription_items', 'payment_items'):
        for name in ('discount_minor', 'discount_value', 'discount_type'):
            op.drop_column(table, name)
    with op.batch_alter_table('link_items', schema=None) as batch_op:
        for name in ('amount_max_minor', 'amount_min_minor', 'custom_amount', 'quantity_max', 'quantity_min',
                     'quantity_adjustable', 'discount_value', 'discount_type'):
            batch_op.drop_column(name)
